"""The feature guide's API examples, sent exactly as written, get the guide's responses."""

from __future__ import annotations

import re
from datetime import datetime

GUIDE_CREATE_BODY = {
    "user_id": "John Doe",
    "persona": "mental_health_nurse",
    "metadata": {"custom_field": "value"},
}
ISO_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def test_create_session_answers_the_guides_keys(client):
    response = client.post("/api/session/create", json=GUIDE_CREATE_BODY)

    assert response.status_code == 201
    body = response.get_json()
    assert {"session_id", "user_id", "created_at", "persona"} <= body.keys()
    assert body["user_id"] == "John Doe"
    assert body["persona"] == "mental_health_nurse"
    assert body["metadata"] == {"custom_field": "value"}
    assert body["session_id"].startswith("session_John-Doe_")
    assert re.fullmatch(r"session_[A-Za-z0-9_-]+", body["session_id"])
    assert ISO_MS_UTC.match(body["created_at"])
    assert datetime.fromisoformat(body["created_at"]).utcoffset().total_seconds() == 0


def test_list_all_sessions_has_the_guides_item_shape(client, api):
    created = [api.create(), api.create(user_id="Jane Roe", persona="creative_writer")]
    api.send(created[0]["session_id"], "Hello")

    response = client.get("/api/sessions")

    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 2
    guide_keys = {"user_id", "persona", "session_id", "created_at", "last_activity", "message_count"}
    for item in body["sessions"]:
        assert guide_keys <= item.keys()
    # newest activity first: the session that just got messages leads
    assert body["sessions"][0]["session_id"] == created[0]["session_id"]
    assert body["sessions"][0]["message_count"] == 2


def test_history_by_user_id_returns_the_guides_shape(client, api):
    session = api.create(**{k: v for k, v in GUIDE_CREATE_BODY.items() if k != "user_id"})
    api.send(session["session_id"], "Hello")

    response = client.get("/api/session/John Doe/history")

    assert response.status_code == 200
    body = response.get_json()
    assert body["user_id"] == "John Doe"
    assert body["message_count"] == 2
    user, assistant = body["messages"]
    assert user["role"] == "user" and user["content"] == "Hello"
    assert assistant["role"] == "assistant" and assistant["content"]
    for message in body["messages"]:
        assert {"role", "content", "timestamp", "metadata"} <= message.keys()
        assert ISO_MS_UTC.match(message["timestamp"])


def test_clear_session_answers_the_guides_message(client, api):
    session = api.create()
    api.send(session["session_id"])

    response = client.delete("/api/session/John Doe/clear")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "success"
    assert body["message"] == "Session cleared for user John Doe"
    history = client.get("/api/session/John Doe/history").get_json()
    assert history["message_count"] == 0 and history["messages"] == []
    assert client.get(f"/api/sessions/{session['session_id']}").status_code == 200


def test_health_reports_redis_ok(client):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["redis"], body["store"]) == ("ok", "ok", "redis")
