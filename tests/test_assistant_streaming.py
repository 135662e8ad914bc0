"""Streaming through a real gunicorn (gevent) server, read incrementally over a socket.

Proves what an in-process test client cannot: no layer buffers the stream (the first piece
reaches the client while the model is still held mid-reply), a client that hangs up keeps
its partial reply, and a hung model frees its request at the time-out while the server keeps
answering others.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chatapp.settings import PROJECT_ROOT
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY
from tests.servers import AppServer, free_port, streaming_gunicorn_cmd

MODEL = "fake-stream-model"
TIMEOUT = 1
AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(redis_server, fake, tmp_path_factory) -> Iterator[AppServer]:
    port = free_port()
    env = {
        "CHATAPP_REDIS_URL": redis_server.url,
        "CHATAPP_LLM_BASE_URL": fake.base_url,
        "CHATAPP_LLM_MODEL": MODEL,
        "CHATAPP_LLM_TIMEOUT": str(TIMEOUT),
        "CHATAPP_API_KEYS": OPERATOR_KEY,
        "CHATAPP_RATELIMIT_ENABLED": "false",
    }
    cmd = streaming_gunicorn_cmd(port)
    log = tmp_path_factory.mktemp("gunicorn") / "app.log"
    with AppServer(cmd, port, env=env, cwd=PROJECT_ROOT, log_path=log) as app_server:
        yield app_server


@pytest.fixture
def llm(fake: FakeLLM, redis_db) -> Iterator[FakeLLM]:
    yield fake.reset()
    fake.release.set()


def call(
    server: AppServer, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, body=payload, headers={**AUTH, **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def new_session(server: AppServer) -> str:
    status, body = call(server, "POST", "/api/session/create", {"user_id": "Streamer"})
    assert status == 201
    return body["session_id"]


def stored(server: AppServer, sid: str) -> list[dict[str, Any]]:
    return call(server, "GET", f"/api/session/{sid}/history")[1]["messages"]


class EventStream:
    """An SSE response read as it arrives, one event at a time."""

    def __init__(self, server: AppServer, path: str, content: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.conn.request(
            "POST", path, body=json.dumps({"content": content}), headers={**AUTH, "Accept": "text/event-stream"}
        )
        self.response = self.conn.getresponse()
        self.buffer = ""

    def next(self) -> tuple[str, dict[str, Any], float]:
        while "\n\n" not in self.buffer:
            data = self.response.read1(65536)
            if not data:
                raise EOFError("stream ended")
            self.buffer += data.decode()
        block, self.buffer = self.buffer.split("\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        return fields["event"], json.loads(fields["data"]), time.monotonic()

    def close(self) -> None:
        self.conn.close()


def test_first_piece_reaches_the_client_before_the_model_has_finished(server, llm):
    llm.reset("slow")  # the model sends one piece, then waits for the test
    sid = new_session(server)

    stream = EventStream(server, f"/api/sessions/{sid}/messages", "Write me something")
    try:
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        assert stream.response.getheader("X-Accel-Buffering") == "no"
        assert stream.next()[0] == "user_message"
        name, data, first_at = stream.next()
        assert (name, data) == ("delta", {"text": llm.pieces[0]})
        assert not llm.finished.is_set()  # still mid-reply: nothing buffered the piece
        llm.release.set()
        events = [stream.next() for _ in range(len(llm.pieces))]
    finally:
        stream.close()

    assert [name for name, _, _ in events] == ["delta"] * (len(llm.pieces) - 1) + ["done"]
    assert llm.finished_at is not None and first_at < llm.finished_at
    done = events[-1][1]["assistant_message"]
    assert done["content"] == llm.reply and done["metadata"]["model"] == MODEL
    assert stored(server, sid)[-1] == done


def test_client_hanging_up_mid_reply_leaves_the_reply_to_finish_and_be_stored_whole(server, llm):
    llm.reset("slow", pieces=[f"word{n} " for n in range(60)], interval=0.02)
    sid = new_session(server)

    stream = EventStream(server, f"/api/sessions/{sid}/messages", "Tell me a long story")
    stream.next()
    assert stream.next()[1] == {"text": "word0 "}
    stream.close()  # the browser goes away (a reload, a lost connection)
    llm.release.set()

    deadline = time.monotonic() + 10
    while len(messages := stored(server, sid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    reply = messages[-1]
    assert reply["role"] == "assistant"
    assert reply["content"] == llm.reply  # a reply is a job: it outlives its poster's connection
    assert not {"interrupted", "incomplete", "stopped"} & set(reply["metadata"])


def test_hung_model_gives_504_at_the_time_out_while_the_server_keeps_serving(server, llm):
    llm.reset("hang")
    sid = new_session(server)
    outcome: dict[str, Any] = {}

    def post() -> None:
        started = time.monotonic()
        outcome["status"], outcome["body"] = call(server, "POST", f"/api/sessions/{sid}/messages", {"content": "Hi?"})
        outcome["seconds"] = time.monotonic() - started

    waiting = threading.Thread(target=post)
    waiting.start()
    while not llm.requests:  # the model has been asked and is hanging
        time.sleep(0.01)
    served = []
    for _ in range(3):  # other requests are answered meanwhile
        started = time.monotonic()
        assert call(server, "GET", f"/api/sessions/{sid}")[0] == 200
        served.append(time.monotonic() - started)
    waiting.join(10)

    assert outcome["status"] == 504, outcome
    assert TIMEOUT <= outcome["seconds"] < TIMEOUT + 1.5
    assert max(served) < TIMEOUT
    assert [m["role"] for m in stored(server, sid)] == ["user"]
    llm.reset()
    assert call(server, "POST", f"/api/sessions/{sid}/reply")[0] == 201  # Retry works at once
    assert [m["role"] for m in stored(server, sid)] == ["user", "assistant"]
