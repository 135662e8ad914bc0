"""The libraries the app leans on, under gunicorn's gevent worker (gunicorn.conf.py's default).

One worker, its own redis-server and the fake model: each test would fail if that library
blocked the worker's one thread instead of yielding to the other greenlets, or broke under
gevent's monkey-patching.

- the model client (http.client) and redis-py: 20 streamed replies at once, each holding its model
  stream open, all get their first piece before any finishes, and all are stored whole;
- Flask-Limiter: concurrent posts over a budget get exactly the budget's 201s;
- prometheus_client in multiprocess mode: the replies are counted in /metrics;
- the bounded Redis pool: with CHATAPP_REDIS_MAX_CONNECTIONS=2 (as every test here runs), 50
  requests at once all succeed, and Redis never sees more than 2 + 2 (the limiter's) connections.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatapp.settings import PROJECT_ROOT
from tests.servers import AppServer, RedisServer, free_port

pytestmark = pytest.mark.redis

GUNICORN = Path(sys.executable).with_name("gunicorn")
STREAMER = "gevent-streams-key"
LIMITED = "gevent-limited-key"
SESSION_LIMIT = 40  # per key: the other tests create fewer than this with their own key
STREAMS = 20
PIECES = [f"piece{n} " for n in range(8)]
POOL = 2  # the store's connections; the rate limiter's own pool is never below 2 either


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory) -> Iterator[RedisServer]:
    """A server of this module's own: CLIENT LIST shows this app's connections and nothing else."""
    with RedisServer(tmp_path_factory.mktemp("gevent-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def server(own_redis, fake, tmp_path_factory) -> Iterator[AppServer]:
    port = free_port()
    env = {
        "CHATAPP_ENV": "production",
        "CHATAPP_SECRET_KEY": "test-secret-key-for-the-gevent-run-0123456789",
        "CHATAPP_REDIS_URL": own_redis.url,
        "CHATAPP_API_KEYS": f"{STREAMER},{LIMITED}",
        "CHATAPP_LLM_BASE_URL": fake.base_url,
        "CHATAPP_LLM_MODEL": "fake-gevent-model",
        "CHATAPP_SESSION_RATE_LIMIT": f"{SESSION_LIMIT} per minute",
        "CHATAPP_MESSAGE_RATE_LIMIT": "1000 per minute",
        "CHATAPP_REDIS_MAX_CONNECTIONS": str(POOL),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",  # one worker: whatever blocks it blocks every request
        "GUNICORN_WORKER_CLASS": None,  # the config file's default
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("gevent-multiproc")),
        "HOME": str(tmp_path_factory.mktemp("gevent-home")),
        "XDG_RUNTIME_DIR": None,
    }
    log = tmp_path_factory.mktemp("gevent-gunicorn") / "gunicorn.log"
    with AppServer([GUNICORN, "wsgi:app"], port, env=env, cwd=PROJECT_ROOT, log_path=log) as app_server:
        yield app_server


def call(server: AppServer, method: str, path: str, body: Any = None, key: str = STREAMER) -> tuple[int, Any]:
    """One request on its own connection; the body as JSON when it is JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode()
    finally:
        conn.close()


def new_session(server: AppServer) -> str:
    status, body = call(server, "POST", "/api/session/create", {"user_id": "gevent"})
    assert status == 201, body
    return body["session_id"]


class Stream:
    """A streamed reply read off a raw socket, event by event."""

    def __init__(self, server: AppServer, sid: str) -> None:
        body = json.dumps({"content": "Tell me"}).encode()
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        self.sock.sendall(
            f"POST /api/sessions/{sid}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {STREAMER}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        self.received = b""

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.received:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"stream ended before {marker!r}: {self.received[-300:]!r}")
            self.received += chunk
        return self.received

    def close(self) -> None:
        self.sock.close()


def test_one_worker_streams_many_replies_at_once_and_stores_each_whole(server, fake):
    fake.reset("slow", pieces=PIECES)  # each model stream sends one piece, then waits for the test
    sessions = [new_session(server) for _ in range(STREAMS)]
    streams = [Stream(server, sid) for sid in sessions]
    try:
        with ThreadPoolExecutor(STREAMS) as pool:
            list(pool.map(lambda stream: stream.read_until(b"event: delta"), streams))
        health = call(server, "GET", "/health")  # answered while the 20 are held open
        held = not fake.finished.is_set()  # every first piece arrived while all 20 were held open
        fake.release.set()
        with ThreadPoolExecutor(STREAMS) as pool:
            ends = list(pool.map(lambda stream: stream.read_until(b"event: done"), streams))
    finally:
        fake.release.set()
        for stream in streams:
            stream.close()

    assert held and health[0] == 200, health
    assert all(end.startswith(b"HTTP/1.1 200") for end in ends)
    for sid in sessions:
        status, body = call(server, "GET", f"/api/sessions/{sid}/messages")
        assert status == 200
        assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
        assert body["messages"][-1]["content"] == "".join(PIECES)


def test_the_rate_limit_holds_under_concurrent_posts(server):
    with ThreadPoolExecutor(32) as pool:
        statuses = list(
            pool.map(
                lambda _: call(server, "POST", "/api/session/create", {"user_id": "limited"}, key=LIMITED)[0],
                range(SESSION_LIMIT + 20),
            )
        )

    assert sorted(statuses) == [201] * SESSION_LIMIT + [429] * 20


def test_metrics_count_under_gevent_in_multiprocess_mode(server, fake):
    fake.reset()
    sid = new_session(server)
    assert call(server, "POST", f"/api/sessions/{sid}/messages", {"content": "Hi"})[0] == 201

    status, text = call(server, "GET", "/metrics")

    assert status == 200
    replies = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "chatapp_model_reply_duration_seconds_count"
    }
    assert replies.get("ok", 0) >= 1, replies  # read back from the worker's mmap files


def test_the_worker_log_shows_gevent_and_nothing_but_json(server):
    assert call(server, "GET", "/health")[0] == 200
    lines = [line for line in server.log_path.read_text().splitlines() if line and not line.startswith("=== start:")]

    assert any('"Using worker: gevent"' in line for line in lines)
    assert "MonkeyPatchWarning" not in server.log_path.read_text()
    assert all(isinstance(json.loads(line), dict) for line in lines)


def request_for(n: int, sessions: list[str]) -> tuple[str, str, dict[str, str] | None]:
    """A message to each session (one reply at a time per session), then reads of them."""
    sid = sessions[n % len(sessions)]
    if n < len(sessions):
        return "POST", f"/api/sessions/{sid}/messages", {"content": f"{n}"}
    return "GET", f"/api/sessions/{sid}/messages", None


def test_fifty_requests_at_once_share_two_connections(server, own_redis, fake):
    fake.reset(interval=0.01)
    sessions = [new_session(server) for _ in range(10)]
    stop = threading.Event()
    peak = []
    with own_redis.client() as direct:
        me = direct.client_id()

        def sample() -> None:
            while not stop.is_set():
                peak.append(sum(1 for c in direct.client_list() if int(c["id"]) != me))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(50) as pool:
                answers = list(
                    pool.map(
                        lambda n: call(server, *request_for(n, sessions)),
                        range(50),
                    )
                )
        finally:
            stop.set()
            sampler.join()

    assert all(status in (200, 201) for status, _ in answers), [body for status, body in answers if status > 201][:3]
    assert 1 <= max(peak) <= POOL + 2, max(peak)
    for sid in sessions:
        assert call(server, "GET", f"/api/sessions/{sid}")[1]["message_count"] == 2
