"""Logs never hold message content or API keys, on success and on every error path."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest

from tests.helpers import OPERATOR_KEY, Visitor
from tests.servers import AppServer, free_port, gunicorn_cmd

SECRET_CONTENT = "my-diagnosis-is-SECRET-CONTENT-4711"
WRONG_KEY = "wrong-key-SECRET-9f8e7d"
SECRETS = (SECRET_CONTENT, OPERATOR_KEY, WRONG_KEY)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the logs"


def test_a_full_flow_with_errors_logs_no_content_and_no_keys(redis_server, redis_db, caplog, make_app):
    caplog.set_level(logging.DEBUG)
    app = make_app(REDIS_URL=redis_server.url, MAX_MESSAGE_LENGTH=100, MESSAGE_RATE_LIMIT="3 per minute")
    operator = app.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    visitor = Visitor(app)

    session_id = operator.post("/api/session/create", json={"user_id": "John Doe"}).get_json()["session_id"]
    own = visitor.create()["session_id"]
    statuses = [
        operator.post(f"/api/sessions/{session_id}/messages", json={"content": SECRET_CONTENT}).status_code,
        visitor.request("POST", f"/api/sessions/{own}/messages", json={"content": SECRET_CONTENT}).status_code,
        operator.post(f"/api/sessions/{session_id}/messages", json={"content": SECRET_CONTENT * 10}).status_code,
        operator.post(f"/api/sessions/{session_id}/messages", json={"content": SECRET_CONTENT}).status_code,
        operator.post(f"/api/sessions/{session_id}/messages", json={"content": SECRET_CONTENT}).status_code,
        visitor.request(
            "POST", f"/api/sessions/{own}/messages", csrf=False, json={"content": SECRET_CONTENT}
        ).status_code,
        visitor.request(
            "POST", f"/api/sessions/{own}/messages", data=SECRET_CONTENT, content_type="application/json"
        ).status_code,
        app.test_client()
        .post(
            f"/api/sessions/{session_id}/messages",
            json={"content": SECRET_CONTENT},
            headers={"Authorization": f"Bearer {WRONG_KEY}"},
        )
        .status_code,
    ]
    down = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    statuses.append(
        down.test_client()
        .post(
            f"/api/sessions/{session_id}/messages",
            json={"content": SECRET_CONTENT},
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        )
        .status_code
    )

    # stored, stored, too long, stored, rate limited, no CSRF token, not JSON, wrong key, Redis down
    assert statuses == [201, 201, 422, 201, 429, 400, 400, 401, 503]
    assert caplog.records, "expected the error paths to log something"
    assert_clean(caplog.text)
    assert_clean(" ".join(repr(record.args) for record in caplog.records))


@pytest.fixture(scope="module")
def logged_server(redis_server, tmp_path_factory):
    """gunicorn with access and debug logs, as production would log."""
    port = free_port()
    env = {"CHATAPP_REDIS_URL": redis_server.url, "CHATAPP_API_KEYS": OPERATOR_KEY, "CHATAPP_MAX_MESSAGE_LENGTH": "100"}
    cmd = gunicorn_cmd(port, "--access-logfile", "-", "--error-logfile", "-", "--log-level", "debug")
    with AppServer(cmd, port, env=env, cwd=tmp_path_factory.mktemp("gunicorn")) as server:
        yield server


def call(server, method: str, path: str, body=None, key: str | None = OPERATOR_KEY) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.base_url}{path}", data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_a_real_servers_access_and_error_logs_hold_no_content_and_no_keys(logged_server, redis_db):
    status = call(logged_server, "POST", "/api/session/create", {"user_id": "John Doe"})
    assert status == 201
    listing = urllib.request.Request(  # noqa: S310 - our own http:// test server
        f"{logged_server.base_url}/api/sessions",
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    with urllib.request.urlopen(listing, timeout=10) as response:  # noqa: S310
        session_id = json.load(response)["sessions"][0]["session_id"]
    path = f"/api/sessions/{session_id}/messages"

    statuses = [
        call(logged_server, "POST", path, {"content": SECRET_CONTENT}),
        call(logged_server, "POST", path, {"content": SECRET_CONTENT * 10}),
        call(logged_server, "POST", path, {"content": SECRET_CONTENT}, key=WRONG_KEY),
        call(logged_server, "GET", f"/api/session/{session_id}/history"),
    ]

    assert statuses == [201, 422, 401, 200]
    log = logged_server.log_path.read_text(encoding="utf-8", errors="replace")
    assert f'"POST {path} HTTP/1.1" 422' in log  # access logging was on
    assert_clean(log)
