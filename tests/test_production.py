"""Production defaults: Secure cookies, secret keys as text (long enough, rotatable), /health
that tells strangers only the status, and a Redis that refuses writes shown as degraded."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import redis
from flask import Flask

from chatapp import create_app
from chatapp.settings import OFFLINE_HINT, ConfigError
from tests.helpers import OPERATOR_KEY, ROOT, Visitor
from tests.servers import RedisServer, free_port, no_retry

KEY = "k" * 32 + "-current"
OLD_KEY = "o" * 32 + "-previous"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("CHATAPP_")]:
        monkeypatch.delenv(name)


def production(make_app, url: str, **config) -> Flask:
    return make_app(**{"ENV": "production", "REDIS_URL": url, "SECRET_KEY": KEY, **config})


def first_page_cookie(app: Flask) -> str:
    response = app.test_client().get("/", base_url="https://chat.example")
    assert response.status_code == 200
    return response.headers["Set-Cookie"]


# --- cookies --------------------------------------------------------------------------------------


def test_the_visitor_cookie_is_secure_in_production_by_default(redis_server, redis_db, make_app):
    cookie = first_page_cookie(production(make_app, redis_server.url))

    assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_plain_http_needs_an_explicit_opt_out_and_gets_a_warning(redis_server, redis_db, monkeypatch, make_app, caplog):
    monkeypatch.setenv("CHATAPP_SESSION_COOKIE_SECURE", "0")
    with caplog.at_level(logging.WARNING, logger="chatapp.settings"):
        app = production(make_app, redis_server.url)

    assert "Secure" not in first_page_cookie(app)
    assert "CHATAPP_SESSION_COOKIE_SECURE is off in production" in caplog.text


def test_development_keeps_plain_cookies_and_says_nothing(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="chatapp.settings"):
        app = make_app(REDIS_URL="memory://")

    assert "Secure" not in first_page_cookie(app)
    assert "SESSION_COOKIE_SECURE" not in caplog.text


# --- secret keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["123456", "true", "1e3", "null", '{"a": 1}'])
def test_a_secret_key_is_read_as_text_and_works_in_development(monkeypatch, make_app, value):
    """from_prefixed_env decoded these as JSON (an int, a bool, ...): every page was a 500."""
    monkeypatch.setenv("CHATAPP_SECRET_KEY", value)
    app = make_app(REDIS_URL="memory://")

    assert app.config["SECRET_KEY"] == value
    visitor = Visitor(app)
    assert app.test_client().get("/").status_code == 200
    assert visitor.request("POST", "/api/session/create", json={}).status_code == 201


@pytest.mark.parametrize("value", ["123456", "true", "x" * 31])
def test_production_refuses_a_short_secret_key_with_a_clear_message(monkeypatch, value):
    monkeypatch.setenv("CHATAPP_SECRET_KEY", value)

    with pytest.raises(ConfigError, match=rf"is {len(value)} characters long; production needs at least 32"):
        create_app({"ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0"})


def test_wsgi_stops_with_one_line_on_a_short_production_key():
    """What gunicorn would show: one line and exit status 3 (gunicorn then stops, not respawns)."""
    env = {**os.environ, "CHATAPP_ENV": "production", "CHATAPP_REDIS_URL": "redis://127.0.0.1:1/0"}
    env["CHATAPP_SECRET_KEY"] = "123456"
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 3
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("chatapp: configuration error: CHATAPP_SECRET_KEY is 6 characters long")


def test_rotating_the_secret_key_keeps_every_visitors_sessions(redis_server, redis_db, monkeypatch, make_app):
    before = production(make_app, redis_server.url, SECRET_KEY=OLD_KEY)
    visitor = Visitor(before)
    created = visitor.create(display_name="Before the rotation")
    visitor.send(created["session_id"], "remember me")

    monkeypatch.setenv("CHATAPP_SECRET_KEY", KEY)
    monkeypatch.setenv("CHATAPP_SECRET_KEY_FALLBACKS", f"{'z' * 40},{OLD_KEY}")
    after = make_app.plain({"TESTING": True, "ENV": "production", "REDIS_URL": redis_server.url})
    browser = after.test_client()
    browser.set_cookie("chatapp", visitor.cookie, domain="localhost", secure=False)

    page = browser.get("/", base_url="https://localhost")
    listed = browser.get("/api/sessions", base_url="https://localhost").get_json()

    assert after.config["SECRET_KEY_FALLBACKS"] == ["z" * 40, OLD_KEY]
    assert page.status_code == 200 and visitor.user_id in page.get_data(as_text=True)
    assert [s["session_id"] for s in listed["sessions"]] == [created["session_id"]]
    assert listed["sessions"][0]["message_count"] == 2
    # The answer re-signs the cookie with the new key: it works once the old key is dropped.
    resigned = page.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    only_new = make_app(ENV="production", REDIS_URL=redis_server.url, SECRET_KEY=KEY)
    fresh = only_new.test_client()
    fresh.set_cookie("chatapp", resigned, domain="localhost", secure=False)
    assert len(fresh.get("/api/sessions", base_url="https://localhost").get_json()["sessions"]) == 1


def test_without_the_fallback_the_old_cookie_is_a_stranger(redis_server, redis_db, make_app):
    visitor = Visitor(production(make_app, redis_server.url, SECRET_KEY=OLD_KEY))
    visitor.create()
    after = production(make_app, redis_server.url)
    browser = after.test_client()
    browser.set_cookie("chatapp", visitor.cookie, domain="localhost", secure=False)

    assert browser.get("/api/sessions", base_url="https://localhost").status_code == 401


# --- /health --------------------------------------------------------------------------------------


def test_anonymous_health_is_the_status_only(redis_server, redis_db, make_app):
    client = production(make_app, redis_server.url).test_client()

    anonymous = client.get("/health")
    operator = client.get("/health", headers=OPERATOR)

    assert anonymous.status_code == 200 and anonymous.get_json() == {"status": "ok"}
    assert operator.get_json() == {
        "status": "ok",
        "redis": "ok",
        "store": "redis",
        "assistant": "offline",
        "assistant_hint": OFFLINE_HINT,
        "search": "built-in",
    }


def test_anonymous_health_names_no_address_while_redis_is_down(make_app):
    port = free_port()
    app = production(make_app, f"redis://127.0.0.1:{port}/0", REDIS_OPTIONS={"retry": no_retry()})
    client = app.test_client()

    anonymous = client.get("/health")
    operator = client.get("/health", headers=OPERATOR)

    assert anonymous.status_code == 503 and anonymous.get_json() == {"status": "unavailable"}
    assert str(port) not in anonymous.get_data(as_text=True) and "127.0.0.1" not in anonymous.get_data(as_text=True)
    assert operator.status_code == 503 and "ConnectionError" in operator.get_json()["redis"]


def test_a_visitor_gets_the_status_only_too(redis_server, redis_db, make_app):
    app = production(make_app, redis_server.url)

    assert Visitor(app).request("GET", "/health").get_json() == {"status": "ok"}


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, to fill or demote without touching the shared one."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.mark.redis
def test_a_redis_out_of_memory_shows_as_degraded(own_redis, make_app):
    app = production(make_app, own_redis.url)
    client = app.test_client()
    session_id = client.post("/api/session/create", json={}, headers=OPERATOR).get_json()["session_id"]
    assert client.get("/health").get_json() == {"status": "ok"}
    with own_redis.client() as direct:
        direct.config_set("maxmemory-policy", "noeviction")
        direct.config_set("maxmemory", "1")  # below what it already uses: every write is refused

        anonymous = client.get("/health")
        operator = client.get("/health", headers=OPERATOR)
        write = client.post(f"/api/sessions/{session_id}/messages", json={"content": "hi"}, headers=OPERATOR)
        read = client.get(f"/api/sessions/{session_id}", headers=OPERATOR)
        direct.config_set("maxmemory", "0")

    assert anonymous.status_code == 503 and anonymous.get_json() == {"status": "degraded"}
    assert operator.get_json()["redis"].startswith("refuses writes: OutOfMemoryError")
    assert write.status_code == 503 and read.status_code == 200  # what degraded means: reads work
    assert client.get("/health").get_json() == {"status": "ok"}


@pytest.mark.redis
def test_a_read_only_replica_shows_as_degraded(own_redis, make_app):
    client = production(make_app, own_redis.url).test_client()
    with own_redis.client() as direct:
        direct.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # a master that is not there
        try:
            health = client.get("/health", headers=OPERATOR)
        finally:
            direct.execute_command("REPLICAOF", "NO", "ONE")

    assert health.status_code == 503 and health.get_json()["status"] == "degraded"
    assert "ReadOnlyError" in health.get_json()["redis"]


def test_the_probe_key_expires_by_itself(redis_server, redis_db, make_app):
    production(make_app, redis_server.url).test_client().get("/health")

    assert 0 < redis_db.pttl("chatapp:health:probe") <= 60_000
    assert isinstance(redis_db, redis.Redis)
