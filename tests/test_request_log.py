"""Request ids and the one-line-per-request JSON log."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.helpers import OPERATOR_KEY

LOGGER = "chatapp.request"


@pytest.fixture
def memory_client(memory_app):
    return memory_app.test_client()


def request_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER]


def test_a_request_id_is_generated_and_returned(memory_client):
    first = memory_client.get("/health").headers["X-Request-ID"]
    second = memory_client.get("/health").headers["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize("incoming", ["abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "req.1:2@edge/7=", "a" * 128])
def test_a_sane_incoming_request_id_is_kept(memory_client, incoming):
    response = memory_client.get("/health", headers={"X-Request-ID": incoming})

    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming", ["", " ", "a" * 129, "has space", "<script>", 'quote"d', "-leading-dash", "ünïcode", "a\tb"]
)
def test_a_strange_incoming_request_id_is_replaced(memory_client, incoming):
    response = memory_client.get("/health", headers={"X-Request-ID": incoming})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_one_json_line_per_request_with_the_documented_fields(memory_client, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    response = memory_client.get("/health", headers={"X-Request-ID": "trace-1"})

    [line] = request_lines(caplog)
    assert line["event"] == "request" and line["request_id"] == "trace-1" == response.headers["X-Request-ID"]
    assert line["method"] == "GET" and line["path"] == "/health" and line["endpoint"] == "/health"
    assert line["status"] == 200 and line["principal"] == "anonymous"
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 5000
    assert line["time"].endswith("+00:00")


def test_lines_name_the_principal_kind_and_the_rule_not_the_content(memory_app, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    operator = memory_app.test_client()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    sid = operator.post("/api/session/create", json={"user_id": "Jane Roe"}, headers=headers).get_json()["session_id"]
    operator.post(f"/api/sessions/{sid}/messages", json={"content": "my secret diagnosis"}, headers=headers)
    operator.get("/api/sessions?user_id=Jane%20Roe&persona=default", headers=headers)
    memory_app.test_client().get("/api/sessions")  # nobody: 401
    memory_app.test_client().get("/api/sessions", headers={"Authorization": "Bearer wrong-key-xyz"})

    lines = request_lines(caplog)
    assert [(x["method"], x["endpoint"], x["status"], x["principal"]) for x in lines] == [
        ("POST", "/api/session/create", 201, "operator"),
        ("POST", "/api/sessions/<session_id>/messages", 201, "operator"),
        ("GET", "/api/sessions", 200, "operator"),
        ("GET", "/api/sessions", 401, "anonymous"),
        ("GET", "/api/sessions", 401, "anonymous"),
    ]
    assert lines[1]["path"] == f"/api/sessions/{sid}/messages"
    assert lines[2]["path"] == "/api/sessions"  # no query string
    text = caplog.text
    for secret in ("my secret diagnosis", OPERATOR_KEY, "wrong-key-xyz", "Jane%20Roe", "persona=default"):
        assert secret not in text


def test_visitors_are_logged_as_visitors(memory_app, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    client = memory_app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = "user_visitor"

    client.get("/api/sessions")

    assert request_lines(caplog)[-1]["principal"] == "visitor"


def test_unknown_routes_and_errors_are_logged_with_their_status(memory_client, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    response = memory_client.get("/no/such/page", headers={"X-Request-ID": "lost-1"})

    assert response.status_code == 404 and response.headers["X-Request-ID"] == "lost-1"
    [line] = request_lines(caplog)
    assert line["status"] == 404 and line["endpoint"] is None and line["request_id"] == "lost-1"
