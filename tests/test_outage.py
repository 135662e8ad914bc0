"""Redis going away and coming back: 503 JSON everywhere, self-healing, nothing acknowledged lost.

A module-wide redis-server persists every write before answering (appendonly, fsync always),
as a production Redis configured to keep data would; tests stop, kill and restart it on the
same port and directory. The app runs with its production connection settings (short
time-outs, one retry on a new connection).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import OPERATOR_KEY, AppFactory
from tests.servers import RedisServer

pytestmark = pytest.mark.redis

SID = "session_nobody_1700000000_0123456789"

# Every endpoint that needs the store, with a body that passes validation.
STORE_ENDPOINTS = [
    ("POST", "/api/session/create", {"user_id": "u", "persona": "default"}),
    ("GET", "/api/sessions", None),
    ("GET", "/api/sessions?user_id=u&persona=default", None),
    ("GET", "/api/session/u/history", None),
    ("GET", f"/api/session/{SID}/history", None),
    ("DELETE", "/api/session/u/clear", None),
    ("GET", f"/api/sessions/{SID}", None),
    ("PATCH", f"/api/sessions/{SID}", {"display_name": "x"}),
    ("PATCH", f"/api/sessions/{SID}", {"archived": True}),
    ("DELETE", f"/api/sessions/{SID}", None),
    ("GET", f"/api/sessions/{SID}/messages", None),
    ("POST", f"/api/sessions/{SID}/messages", {"content": "hello"}),
    ("POST", f"/api/sessions/{SID}/reply", None),
    ("POST", f"/api/sessions/{SID}/stop", None),
    ("GET", f"/api/sessions/{SID}/events", None),
]


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    args = ["--appendonly", "yes", "--appendfsync", "always"]
    with RedisServer(Path(tmp_path_factory.mktemp("durable-redis")), extra_args=args) as server:
        yield server


@pytest.fixture
def redis_up(durable_redis: RedisServer) -> Iterator[RedisServer]:
    """The durable server, running and empty at the start of each test, running again after."""
    durable_redis.start()
    with durable_redis.client() as c:
        c.flushall()
    yield durable_redis
    durable_redis.start()


@pytest.fixture
def app(redis_up: RedisServer, make_app: AppFactory) -> Flask:
    return make_app(REDIS_URL=redis_up.url)


def crash(server: RedisServer) -> None:
    """SIGKILL: no shutdown save, no goodbye to clients; only what was fsynced survives."""
    proc = server._proc._proc
    assert proc is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
    server.stop()


def call(client: FlaskClient, method: str, url: str, body: dict | None):
    return client.open(url, method=method, json=body)


def assert_store_unavailable(response) -> None:
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == 503 and error["name"] == "Service Unavailable"
    assert "session store is unavailable" in error["message"]


def test_health_answers_503_json_naming_the_cause_while_redis_is_down(client, redis_up):
    assert client.get("/health").status_code == 200
    redis_up.stop()

    response = client.get("/health")

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable" and body["store"] == "redis"
    assert body["redis"].startswith("unavailable: ConnectionError")
    assert str(redis_up.port) in body["redis"]


def test_every_store_endpoint_answers_503_json_while_redis_is_down(api, client, redis_up):
    sid = api.create()["session_id"]  # pooled connections exist and are now broken by the stop
    redis_up.stop()

    for method, url, body in STORE_ENDPOINTS:
        assert_store_unavailable(call(client, method, url.replace(SID, sid), body))


def test_no_api_route_answers_500_or_html_while_redis_is_down(app, client, redis_up):
    """A sweep over every /api rule, so a route added later is held to the same promise."""
    redis_up.stop()
    seen = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<path:{name}>", SID).replace(f"<{name}>", SID)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = call(client, method, url, {} if method in ("POST", "PATCH", "PUT") else None)
            seen += 1
            assert response.status_code != 500, (method, url)
            assert response.mimetype == "application/json", (method, url, response.mimetype)
    assert seen >= len(STORE_ENDPOINTS) - 2


def test_app_recovers_by_itself_when_redis_returns(api, client, redis_up):
    sid = api.create()["session_id"]
    redis_up.stop()
    assert_store_unavailable(client.get(f"/api/sessions/{sid}"))
    assert client.get("/health").status_code == 503

    redis_up.start()

    # no restart, no reconnect call: the very next requests succeed
    assert client.get("/health").status_code == 200
    assert client.get(f"/api/sessions/{sid}").status_code == 200
    assert api.send(sid, "back again")["assistant_message"]["role"] == "assistant"


def test_pooled_connections_broken_by_a_restart_are_replaced(app, api, client, redis_up):
    """Redis restarts between two requests (no request sees it down): redis-py notices the
    stale pooled connection (EOF at checkout, or a failed send retried) and replaces it;
    the caller never notices."""
    sid = api.create()["session_id"]
    api.send(sid, "before")
    with redis_up.client(decode_responses=True) as c:
        first_run_id = c.info("server")["run_id"]

    redis_up.stop()
    redis_up.start()

    with redis_up.client(decode_responses=True) as c:
        assert c.info("server")["run_id"] != first_run_id  # really a new server process
    for _ in range(3):  # every pooled connection gets used at least once
        assert client.get(f"/api/sessions/{sid}/messages").status_code == 200
    assert api.send(sid, "after")["user_message"]["content"] == "after"
    assert client.get(f"/api/sessions/{sid}").get_json()["message_count"] == 4


def test_no_acknowledged_message_is_lost_when_redis_crashes(api, client, redis_up):
    sid = api.create()["session_id"]
    sent = [f"message {i}" for i in range(25)]
    for content in sent:
        assert client.post(f"/api/sessions/{sid}/messages", json={"content": content}).status_code == 201

    crash(redis_up)  # SIGKILL right after the last 201
    redis_up.start()

    history = client.get(f"/api/session/{sid}/history").get_json()
    users = [m["content"] for m in history["messages"] if m["role"] == "user"]
    assert users == sent
    assert history["message_count"] == 2 * len(sent)
    assert api.list()["count"] == 1


def test_writes_refused_during_an_outage_leave_nothing_behind(api, client, redis_up):
    sid = api.create(user_id="keeper")["session_id"]
    api.send(sid, "kept")
    redis_up.stop()

    assert_store_unavailable(client.post(f"/api/sessions/{sid}/messages", json={"content": "refused"}))
    assert_store_unavailable(client.post("/api/session/create", json={"user_id": "ghost"}))
    assert_store_unavailable(client.patch(f"/api/sessions/{sid}", json={"display_name": "refused"}))
    assert_store_unavailable(client.delete(f"/api/sessions/{sid}"))
    redis_up.start()

    messages = client.get(f"/api/session/{sid}/history").get_json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["kept"]
    session = client.get(f"/api/sessions/{sid}").get_json()
    assert session["display_name"] is None and session["message_count"] == 2
    assert [s["user_id"] for s in api.list(limit=100)["sessions"]] == ["keeper"]
    with redis_up.client(decode_responses=True) as c:
        assert not [k for k in c.scan_iter("*ghost*")]


def test_outage_answers_come_quickly(client, redis_up):
    """Callers are not kept waiting on a dead Redis: retries are few and short."""
    redis_up.stop()
    started = time.monotonic()
    for method, url, body in STORE_ENDPOINTS:
        call(client, method, url, body)
    per_request = (time.monotonic() - started) / len(STORE_ENDPOINTS)
    assert per_request < 1.0, per_request


def test_a_redis_that_does_not_answer_in_time_gives_503_not_a_hang(redis_up, make_app):
    """A hung Redis (accepts, never replies) is a timeout, reported like an outage."""
    app = make_app(REDIS_URL=redis_up.url, REDIS_OPTIONS={"socket_timeout": 0.2})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    assert client.get("/health").status_code == 200
    pid = redis_up._proc._proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        assert_store_unavailable(client.get("/api/sessions"))
        health = client.get("/health")
        assert health.status_code == 503 and "Timeout" in health.get_json()["redis"]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert client.get("/api/sessions").status_code == 200
    with contextlib.suppress(redis.RedisError):
        redis_up.ping()


def test_a_hung_redis_answers_every_endpoint_503_within_5_seconds_and_heals(redis_up, make_app):
    """SIGSTOP: the server accepts connections and never answers. With the default settings
    (rate limits on, whose counters live in the same Redis) no request waits past 5 s."""
    app = make_app(REDIS_URL=redis_up.url)  # the app's own time-outs, nothing shortened for the test
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = client.post("/api/session/create", json={"user_id": "u"}).get_json()["session_id"]
    pid = redis_up._proc._proc.pid
    os.kill(pid, signal.SIGSTOP)
    took = {}
    try:
        for method, path, body in [*STORE_ENDPOINTS, ("GET", "/health", None), ("GET", f"/api/sessions/{sid}", None)]:
            started = time.monotonic()
            response = client.open(path, method=method, json=body)
            took[f"{method} {path}"] = round(time.monotonic() - started, 2)
            assert response.status_code == 503 and response.mimetype == "application/json", path
        started = time.monotonic()
        assert client.get("/").status_code == 503  # the page, with its banner
        took["GET /"] = round(time.monotonic() - started, 2)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert max(took.values()) < 5, took
    assert client.get(f"/api/sessions/{sid}").status_code == 200  # back by itself, no restart
