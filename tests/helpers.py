"""What tests share besides fixtures: apps that get closed, the operator's key, the two kinds of API
caller, a round-trip counter.

- `AppFactory`: builds apps with the test settings and closes every one it built. Tests get it as
  the `make_app` fixture; code a function-scoped fixture cannot reach (collection, module-scoped
  fixtures) uses it as a `with` block.
- `Api`: an operator (the API key) making the calls tests repeat.
- `Visitor`: a browser without a browser, a test client holding a real signed visitor cookie. The
  cookie is made by the app's own code (auth.ensure_visitor, Flask-WTF's generate_csrf and the
  app's session serializer), exactly what a page view would set, so no test-only route is needed.
- `CountingConnection`: a redis-py connection that counts round trips.
- `raw_http`: one HTTP request sent as the bytes given (what http.client refuses to send).

Fixtures live in conftest.py; real servers in servers.py; the fake model in fake_llm.py.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from flask import Flask, session
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from werkzeug.test import TestResponse

from chatapp import create_app
from chatapp.services.replies import drain
from chatapp.storage import close_store
from chatapp.web.auth import ensure_visitor

ROOT = Path(__file__).resolve().parents[1]
"""The repository: where wsgi.py is and where app server processes start."""

OPERATOR_KEY = "test-operator-key"


class AppFactory:
    """Builds apps and closes them all (their Redis connections) on close(), passing test or not."""

    def __init__(self) -> None:
        self._closing = contextlib.ExitStack()

    def __call__(self, **config: Any) -> Flask:
        """The app with the test settings (TESTING, the operator's key), `config` over them."""
        return self.plain({"TESTING": True, "API_KEYS": OPERATOR_KEY, **config})

    def plain(self, test_config: dict[str, Any] | None = None) -> Flask:
        """create_app(test_config) exactly as given: for tests of the defaults themselves."""
        app = create_app(test_config)
        self._closing.callback(close_store, app)
        # First (callbacks run newest first): no reply job outlives its test, holding sockets.
        self._closing.callback(drain, app, 10)
        return app

    def close(self) -> None:
        """Close every app built so far, newest first; the factory can go on building."""
        self._closing.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Api:
    """Small helper for the API calls tests repeat."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def create(self, user_id: str = "John Doe", persona: str = "default", **extra: Any) -> dict:
        response = self.client.post("/api/session/create", json={"user_id": user_id, "persona": persona, **extra})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def send(self, session_id: str, content: str = "Hello") -> dict:
        response = self.client.post(f"/api/sessions/{session_id}/messages", json={"content": content})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def list(self, **query: Any) -> dict:
        response = self.client.get("/api/sessions", query_string=query)
        assert response.status_code == 200, response.get_json()
        return response.get_json()


def visitor_cookie(app: Flask) -> tuple[str, str, str]:
    """(user_id, signed cookie value, CSRF token) for a brand-new visitor."""
    with app.test_request_context("/"):
        user_id = ensure_visitor()
        token = generate_csrf()
        cookie = app.session_interface.get_signing_serializer(app).dumps(dict(session))
    return user_id, cookie, token


class Visitor:
    """A browser: its cookie on every request, and X-CSRFToken on writes unless told not to."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.user_id, self.cookie, self.csrf_token = visitor_cookie(app)
        self.client: FlaskClient = app.test_client()
        self.client.set_cookie(app.config["SESSION_COOKIE_NAME"], self.cookie)

    def request(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}) or {})
        if csrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers["X-CSRFToken"] = self.csrf_token
        return self.client.open(path, method=method.upper(), headers=headers, **kwargs)

    def create(self, **body: Any) -> dict:
        response = self.request("POST", "/api/session/create", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def send(self, session_id: str, content: str = "Hello") -> dict:
        response = self.request("POST", f"/api/sessions/{session_id}/messages", json={"content": content})
        assert response.status_code == 201, response.get_json()
        return response.get_json()


class CountingConnection(redis.Connection):
    """Counts what goes over the wire: one send per command or per pipeline."""

    round_trips = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).round_trips += 1
        super().send_packed_command(command, check_health)


def raw_http(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` to 127.0.0.1:``port`` as it is and read the answer until the server closes.

    The request should say ``Connection: close`` (or be one the server closes after anyway).
    Returns (status, headers with lower-case names, body); a chunked body is returned as sent.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body
