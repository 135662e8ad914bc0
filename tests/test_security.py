"""Headers on every response, cookie flags, the proxy setting and on/off switches."""

from __future__ import annotations

import pytest
from flask import Flask, request, session

from chatapp import create_app
from chatapp.settings import ConfigError
from chatapp.web.auth import access, ensure_visitor
from chatapp.web.headers import CONTENT_SECURITY_POLICY

ISSUE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def test_the_policy_is_the_one_the_ui_is_built_for():
    assert CONTENT_SECURITY_POLICY == ISSUE_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/personas", 200),
        ("GET", "/api/openapi.json", 200),
        ("GET", "/health", 200),
        ("GET", "/api/sessions", 401),
        ("GET", "/no/such/page", 404),  # an HTML error page
        ("DELETE", "/api/personas", 405),
    ],
)
def test_every_response_carries_the_security_headers(memory_app, method, path, status):
    response = memory_app.test_client().open(path, method=method)

    assert response.status_code == status
    assert response.headers["Content-Security-Policy"] == ISSUE_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_html_pages_carry_the_policy(memory_app):
    response = memory_app.test_client().get("/no/such/page", headers={"Accept": "text/html"})

    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == ISSUE_POLICY


def visitor_set_cookie(app: Flask) -> str:
    """The Set-Cookie header a first page view sends: ensure_visitor, then the session save."""
    with app.test_request_context("/"):
        ensure_visitor()
        response = app.response_class()
        app.session_interface.save_session(app, session, response)
        return response.headers["Set-Cookie"]


def test_visitor_cookie_is_httponly_samesite_lax_and_not_secure_by_default(memory_app):
    cookie = visitor_set_cookie(memory_app)

    assert cookie.startswith("chatapp=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


@pytest.mark.parametrize("value", ["1", "true"])
def test_secure_cookies_from_the_environment(monkeypatch, value, make_app):
    monkeypatch.setenv("CHATAPP_SESSION_COOKIE_SECURE", value)
    app = make_app(REDIS_URL="memory://")

    cookie = visitor_set_cookie(app)

    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _client_view(app: Flask) -> None:
    @access("public")
    def whoami() -> dict[str, str | None]:
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    app.add_url_rule("/whoami", "whoami", whoami)


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example"}


def test_forwarded_headers_count_only_behind_trusted_proxies(monkeypatch, make_app):
    direct = make_app(REDIS_URL="memory://")
    monkeypatch.setenv("CHATAPP_TRUSTED_PROXIES", "1")
    proxied = make_app(REDIS_URL="memory://")
    for app in (direct, proxied):
        _client_view(app)

    seen_direct = direct.test_client().get("/whoami", headers=FORWARDED).get_json()
    seen_proxied = proxied.test_client().get("/whoami", headers=FORWARDED).get_json()

    assert seen_direct == {"addr": "127.0.0.1", "scheme": "http", "host": "localhost"}
    assert seen_proxied == {"addr": "203.0.113.9", "scheme": "https", "host": "chat.example"}


def test_only_as_many_hops_as_configured_are_trusted(monkeypatch, make_app):
    monkeypatch.setenv("CHATAPP_TRUSTED_PROXIES", "1")
    app = make_app(REDIS_URL="memory://")
    _client_view(app)

    seen = app.test_client().get("/whoami", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}).get_json()

    assert seen["addr"] == "203.0.113.9"  # the spoofable left-most entry is ignored


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("CHATAPP_OPEN_API", "False", "OPEN_API", False),  # used to stay truthy text
        ("CHATAPP_OPEN_API", "off", "OPEN_API", False),
        ("CHATAPP_OPEN_API", "1", "OPEN_API", True),
        ("CHATAPP_RATELIMIT_ENABLED", "no", "RATELIMIT_ENABLED", False),
        ("CHATAPP_RATELIMIT_ENABLED", "TRUE", "RATELIMIT_ENABLED", True),
        ("CHATAPP_SESSION_COOKIE_SECURE", "yes", "SESSION_COOKIE_SECURE", True),
        ("CHATAPP_TRUSTED_PROXIES", "2", "TRUSTED_PROXIES", 2),
    ],
)
def test_switches_from_the_environment_become_real_values(monkeypatch, variable, value, setting, expected, make_app):
    monkeypatch.setenv(variable, value)
    app = make_app(REDIS_URL="memory://")

    assert app.config[setting] == expected and type(app.config[setting]) is type(expected)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHATAPP_OPEN_API", "maybe", "OPEN_API must be on or off"),
        ("CHATAPP_RATELIMIT_ENABLED", "2", "RATELIMIT_ENABLED must be on or off"),
        ("CHATAPP_TRUSTED_PROXIES", "many", "TRUSTED_PROXIES must be the number"),
        ("CHATAPP_TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES must be the number"),
    ],
)
def test_unclear_switches_stop_the_app(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError, match=message):
        create_app({"TESTING": True, "REDIS_URL": "memory://"})


@pytest.mark.parametrize("secret", [None, "", "dev-only-insecure-secret-key"])
def test_production_refuses_a_missing_or_default_secret_key(secret):
    config = {"ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0"}
    if secret is not None:
        config["SECRET_KEY"] = secret

    with pytest.raises(ConfigError, match="CHATAPP_SECRET_KEY"):
        create_app(config)
