"""Every bad input gets a 4xx JSON error naming the problem, and nothing is stored."""

from __future__ import annotations

import pytest

from tests.helpers import OPERATOR_KEY

LONG = "x" * 129
BIG_METADATA = {"blob": "y" * (8 * 1024)}


@pytest.fixture
def existing(api):
    """One stored session with one exchange, so tests can check it stays untouched."""
    session = api.create(display_name="Original")
    api.send(session["session_id"], "keep me")
    return session["session_id"]


def snapshot(client, sid):
    return (
        client.get("/api/sessions", query_string={"archived": "false"}).get_json()["count"],
        client.get("/api/sessions", query_string={"archived": "true"}).get_json()["count"],
        client.get(f"/api/sessions/{sid}").get_json(),
        client.get(f"/api/session/{sid}/history").get_json()["messages"],
    )


CREATE_CASES = [
    ({"user_id": "", "persona": "default"}, "user_id"),
    ({"user_id": LONG, "persona": "default"}, "user_id"),
    ({"user_id": 42, "persona": "default"}, "user_id"),
    ({"user_id": "a", "persona": "pirate"}, "persona"),
    ({"user_id": "a", "persona": ""}, "persona"),
    ({"user_id": "a", "metadata": ["not", "an", "object"]}, "metadata"),
    ({"user_id": "a", "metadata": "text"}, "metadata"),
    ({"user_id": "a", "metadata": BIG_METADATA}, "metadata"),
    ({"user_id": "a", "display_name": "n" * 101}, "display_name"),
    ({"user_id": "a", "description": "d" * 1001}, "description"),
    ({"user_id": "a", "colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), CREATE_CASES)
def test_create_rejects_bad_fields_by_name(client, existing, body, field):
    before = snapshot(client, existing)

    response = client.post("/api/session/create", json=body)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == 422 and field in error["fields"]
    assert snapshot(client, existing) == before


def test_unknown_persona_error_lists_the_valid_ids(client):
    error = client.post("/api/session/create", json={"persona": "pirate"}).get_json()["error"]

    message = error["fields"]["persona"][0]
    for persona_id in ("default", "mental_health_nurse", "technical_support", "creative_writer"):
        assert persona_id in message


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_bodies_not_declared_as_json_get_415_and_store_nothing(client, existing, content_type):
    before = snapshot(client, existing)
    body = '{"user_id": "a", "persona": "default", "metadata": {}}'

    response = client.post("/api/session/create", data=body, content_type=content_type)

    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]["message"]
    assert snapshot(client, existing) == before


def test_open_mode_refuses_a_cross_site_plain_text_form(redis_server, redis_db, make_app):
    """With CHATAPP_OPEN_API there is no CSRF token, so a form posted from another site must not parse."""
    app = make_app(REDIS_URL=redis_server.url, OPEN_API=True)
    browser = app.test_client()  # no key, no cookie: what another site's form would send

    forged = browser.post("/api/session/create", data='{"user_id": "victim", "x": "="}', content_type="text/plain")

    assert forged.status_code == 415
    assert browser.get("/api/sessions").get_json()["count"] == 0


@pytest.mark.parametrize(
    "raw",
    ['{"user_id": "a",', "[1, 2]", '"just a string"', "null", "\xff\xfe"],
    ids=["truncated", "array", "string", "null", "not-utf8"],
)
def test_malformed_json_bodies_get_400(client, existing, raw):
    before = snapshot(client, existing)

    response = client.post("/api/session/create", data=raw, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert snapshot(client, existing) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "z" * 32_001}, "content"),
        ({}, "content"),
        ({"content": 5}, "content"),
        ({"content": "hi", "role": "assistant"}, "role"),
    ],
)
def test_post_message_rejects_bad_content_and_stores_nothing(client, existing, body, field):
    before = snapshot(client, existing)

    response = client.post(f"/api/sessions/{existing}/messages", json=body)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert snapshot(client, existing) == before


def test_message_length_limit_is_configurable(redis_server, redis_db, make_app):
    app = make_app(REDIS_URL=redis_server.url, MAX_MESSAGE_LENGTH=10)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    sid = client.post("/api/session/create", json={}, headers=headers).get_json()["session_id"]

    too_long = client.post(f"/api/sessions/{sid}/messages", json={"content": "x" * 11}, headers=headers)
    fits = client.post(f"/api/sessions/{sid}/messages", json={"content": "x" * 10}, headers=headers)

    assert too_long.status_code == 422 and "10 characters" in too_long.get_json()["error"]["fields"]["content"][0]
    assert fits.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "n" * 101}, "display_name"),
        ({"archived": "maybe"}, "archived"),
        ({"description": 3}, "description"),
        ({"session_id": "other"}, "session_id"),
        ({}, "_schema"),
    ],
)
def test_patch_rejects_bad_changes(client, existing, body, field):
    before = snapshot(client, existing)

    response = client.patch(f"/api/sessions/{existing}", json=body)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert snapshot(client, existing) == before


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"offset": -1}, {"archived": "perhaps"}, {"user_id": LONG}],
)
def test_list_rejects_bad_query_parameters(client, query):
    response = client.get("/api/sessions", query_string=query)

    assert response.status_code == 422
    assert set(query) <= set(response.get_json()["error"]["fields"])


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 501}, {"before": -1}, {"before": "x"}])
def test_message_page_rejects_bad_query_parameters(client, existing, query):
    response = client.get(f"/api/sessions/{existing}/messages", query_string=query)

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/sessions/session_nope_1_abc"),
        ("patch", "/api/sessions/session_nope_1_abc"),
        ("delete", "/api/sessions/session_nope_1_abc"),
        ("get", "/api/sessions/session_nope_1_abc/messages"),
        ("post", "/api/sessions/session_nope_1_abc/messages"),
        ("get", "/api/session/nobody/history"),
        ("delete", "/api/session/nobody/clear"),
        ("get", "/api/sessions/has spaces{and}braces"),
        ("get", "/api/sessions/%00"),
    ],
)
def test_unknown_sessions_get_404_json(client, existing, method, path):
    before = snapshot(client, existing)
    body = {"content": "hi"} if method == "post" else ({"display_name": "x"} if method == "patch" else None)

    response = getattr(client, method)(path, json=body)

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404
    assert snapshot(client, existing) == before


def test_wrong_method_gets_405_json(client):
    response = client.put("/api/session/create", json={})

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == 405
    assert "POST" in response.headers["Allow"]


def test_unknown_api_path_gets_404_json_not_html(client):
    response = client.get("/api/nothing/here")

    assert response.status_code == 404
    assert response.is_json


def test_body_over_one_megabyte_gets_413_json_before_parsing(client, existing):
    before = snapshot(client, existing)
    payload = '{"content": "' + "a" * (1024 * 1024) + '"}'

    response = client.post(f"/api/sessions/{existing}/messages", data=payload, content_type="application/json")

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == 413
    assert snapshot(client, existing) == before
