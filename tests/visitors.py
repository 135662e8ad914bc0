"""Browser visitors without a browser: a test client holding a real signed visitor cookie.

The cookie is made by the app's own code (auth.ensure_visitor, Flask-WTF's generate_csrf and
the app's session serializer), exactly what a page view would set, so no test-only route is
needed in the app.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, session
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from werkzeug.test import TestResponse

from chatapp.web.auth import ensure_visitor


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
