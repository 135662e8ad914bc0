"""Replies as jobs and the live channel through a real gunicorn (the repo's gunicorn.conf.py,
two workers) and a real redis-server, over sockets.

Proves what the in-process tests cannot: the reply outlives the poster's TCP connection,
and listeners on separate connections (served by either worker) see one and the same
stream of events, with Last-Event-ID resuming exactly.
"""

from __future__ import annotations

import http.client
import json
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chatapp.settings import PROJECT_ROOT
from chatapp.storage.keys import messages_key
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY
from tests.live_channel import HttpChannel
from tests.servers import AppServer, free_port, repo_gunicorn_cmd

AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json"}


def server_env(redis_url: str, model_url: str, port: int) -> dict[str, str | None]:
    return {
        "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
        "CHATAPP_REDIS_URL": redis_url,
        "CHATAPP_LLM_BASE_URL": model_url,
        "CHATAPP_LLM_MODEL": "fake-live-model",
        "CHATAPP_LLM_TIMEOUT": "5",
        "CHATAPP_API_KEYS": OPERATOR_KEY,
        "CHATAPP_RATELIMIT_ENABLED": "false",
        "CHATAPP_SSE_KEEPALIVE": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "none",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }


@pytest.fixture(scope="module")
def server(redis_server, fake, tmp_path_factory) -> Iterator[AppServer]:
    port = free_port()
    env = server_env(redis_server.url, fake.base_url, port)
    log = tmp_path_factory.mktemp("live-gunicorn") / "app.log"
    with AppServer(repo_gunicorn_cmd(), port, env=env, cwd=PROJECT_ROOT, log_path=log) as app_server:
        yield app_server


@pytest.fixture
def llm(fake: FakeLLM, redis_db) -> Iterator[FakeLLM]:
    yield fake.reset()
    fake.release.set()


def call(server: AppServer, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=AUTH)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def new_session(server: AppServer) -> str:
    status, body = call(server, "POST", "/api/session/create", {"user_id": "Live"})
    assert status == 201
    return body["session_id"]


def stored_reply(server: AppServer, sid: str, seconds: float = 10) -> dict[str, Any] | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, page = call(server, "GET", f"/api/sessions/{sid}/messages?limit=10")
        if len(page["messages"]) >= 2:
            return page["messages"][-1]
        time.sleep(0.05)
    return None


def post_and_hang_up_after_the_first_piece(server: AppServer, sid: str, content: str) -> str:
    """A streamed post read up to its first delta; then the TCP connection is closed."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(
        "POST",
        f"/api/sessions/{sid}/messages",
        body=json.dumps({"content": content}),
        headers={**AUTH, "Accept": "text/event-stream"},
    )
    response = conn.getresponse()
    assert response.status == 200
    while True:
        line = response.fp.readline().decode()
        if line.startswith("data: ") and '"text"' in line:
            conn.sock.close()  # the browser is gone: a reload, a lost connection
            conn.close()
            return json.loads(line[6:])["text"]


def test_the_reply_outlives_its_poster_and_a_late_listener_gets_all_of_it(server, llm):
    llm.reset("slow", pieces=[f"w{n} " for n in range(30)], interval=0.02)
    sid = new_session(server)

    first = post_and_hang_up_after_the_first_piece(server, sid, "Tell me a story")
    late = HttpChannel(server.port, sid, headers=AUTH)  # joins while the model is held
    assert late.status == 200
    (_, kind1, reply), (snapshot_id, kind2, so_far) = late.next(), late.next()
    llm.release.set()
    rest = late.until("done", timeout=10)
    late.close()

    assert (kind1, kind2, so_far["text"]) == ("reply", "delta", first)
    text = so_far["text"] + "".join(data["text"] for _, kind, data in rest if kind == "delta")
    assert text == llm.reply
    assert rest[-1][2]["reply_id"] == reply["reply_id"] == so_far["reply_id"]
    stored = stored_reply(server, sid)
    assert stored is not None and stored["content"] == llm.reply
    assert not {"interrupted", "incomplete", "stopped"} & set(stored["metadata"])

    # Last-Event-ID: from the snapshot's id, then from the middle, exactly what followed.
    for cut in (None, len(rest) // 2):
        after = snapshot_id if cut is None else rest[cut][0]
        expected = rest if cut is None else rest[cut + 1 :]
        resumed = HttpChannel(server.port, sid, headers={**AUTH, "Last-Event-ID": after})
        assert resumed.until("done", timeout=10) == expected
        assert resumed.quiet(0.3) == []
        resumed.close()


def test_listeners_on_separate_connections_see_one_and_the_same_stream(server, llm):
    llm.reset("normal", pieces=[f"p{n} " for n in range(20)])
    sid = new_session(server)
    listeners = [HttpChannel(server.port, sid, headers=AUTH) for _ in range(6)]  # spread over the workers
    time.sleep(0.3)  # each has joined (its headers came back); now the post

    status, _ = call(server, "POST", f"/api/sessions/{sid}/messages", {"content": "hello all"})
    seen = [listener.until("done", timeout=10) for listener in listeners]
    for listener in listeners:
        listener.close()

    assert status == 201
    assert all(events == seen[0] for events in seen)
    assert [kind for _, kind, _ in seen[0]][:2] == ["message", "reply"]


def test_stop_through_the_server_ends_the_reply_within_a_second(server, llm):
    llm.reset("slow", pieces=["Once", " upon", " a time"], interval=0.02)
    sid = new_session(server)
    listener = HttpChannel(server.port, sid, headers=AUTH)
    post_and_hang_up_after_the_first_piece(server, sid, "Go on")

    asked = time.monotonic()
    status, body = call(server, "POST", f"/api/sessions/{sid}/stop")
    done = listener.until("done", timeout=5)[-1]
    took = time.monotonic() - asked
    listener.close()

    assert status == 202 and took < 1
    assert done[2]["stopped"] is True and done[2]["assistant_message"]["content"] == "Once"
    stored = stored_reply(server, sid)
    assert stored is not None and stored["metadata"]["stopped"] is True


def test_a_stopping_worker_lets_its_running_reply_finish_and_be_stored_whole(redis_server, fake, tmp_path, redis_db):
    fake.reset("slow", pieces=[f"s{n} " for n in range(10)], interval=0.05)
    port = free_port()
    env = {**server_env(redis_server.url, fake.base_url, port), "GUNICORN_WORKERS": "1"}
    app_server = AppServer(repo_gunicorn_cmd(), port, env=env, cwd=PROJECT_ROOT, log_path=tmp_path / "app.log")
    try:
        sid = new_session(app_server)
        post_and_hang_up_after_the_first_piece(app_server, sid, "Keep going")
        master = app_server._proc._proc
        assert master is not None
        master.send_signal(signal.SIGTERM)  # a deploy: stop gracefully
        time.sleep(0.5)  # the worker is stopping, no connection left: only the job holds it
        fake.release.set()
        master.wait(timeout=30)
    finally:
        fake.release.set()
        app_server.stop()

    stored = [json.loads(m) for m in redis_db.lrange(messages_key(sid), 0, -1)]
    assert [m["content"] for m in stored] == ["Keep going", fake.reply]
