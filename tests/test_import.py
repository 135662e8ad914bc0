"""POST /api/import on the real redis-server: ChatGPT and Open WebUI files arrive as the branch the
user last saw, bad files are refused with a 4xx and leave Redis exactly as it was, visitors import
only for themselves and within their quotas."""

from __future__ import annotations

import io
import json

import pytest

from chatapp.storage.keys import iso_from_ms
from tests.helpers import Visitor
from tests.transfer_helpers import CHATGPT, OPEN_WEBUI, export_json, key_dump, post_import


def history(client, session_id: str) -> list[dict]:
    response = client.get(f"/api/sessions/{session_id}/messages", query_string={"limit": 500})
    assert response.status_code == 200
    return response.get_json()["messages"]


def stamp(seconds: float) -> str:
    return iso_from_ms(int(seconds * 1000))


@pytest.mark.parametrize("multipart", [False, True], ids=["json-body", "multipart"])
def test_chatgpt_file_arrives_as_the_current_branch_in_order_with_its_times(client, multipart):
    response = post_import(client, CHATGPT.read_bytes(), multipart=multipart, user_id="Ada")

    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["imported"] == 2 and answer["user_id"] == "Ada"
    assert [(s["title"], s["messages"]) for s in answer["sessions"]] == [("Café ☕ plans — 日本語", 4), (None, 2)]
    assert answer["skipped"] == [
        {
            "index": 2,
            "title": "Only a system prompt",
            "reason": "It has no user or assistant text on its current branch.",
        }
    ]
    messages = history(client, answer["sessions"][0]["session_id"])
    assert [(m["role"], m["content"], m["timestamp"]) for m in messages] == [
        ("user", "Plan a trip to Kyoto 🗾 for «two»", stamp(1700000000.5)),
        ("assistant", "Day 1: 東京 → 京都 by Shinkansen.", stamp(1700000020.25)),
        ("user", "[image]\n\nWhat is this dish?", stamp(1700000040)),
        ("assistant", "It is okonomiyaki (お好み焼き).\n\n```python\nprint('お好み焼き')\n```", stamp(1700000050)),
    ]
    assert messages[1]["metadata"] == {"model": "gpt-4o"}
    session = client.get(f"/api/sessions/{answer['sessions'][0]['session_id']}").get_json()
    assert session["display_name"] == "Café ☕ plans — 日本語"
    assert (session["created_at"], session["last_activity"]) == (stamp(1699999999), stamp(1700000060))
    assert session["archived"] is True and session["expires_at"] is None
    assert session["metadata"] == {"imported_from": "chatgpt", "original_id": "conv-1"}
    untimed = history(client, answer["sessions"][1]["session_id"])
    assert [m["timestamp"] for m in untimed] == [stamp(1690000000)] * 2  # no times of their own: the conversation's


def test_open_webui_file_arrives_as_the_branch_ending_at_current_id(client):
    response = post_import(client, OPEN_WEBUI.read_bytes(), user_id="Grete", persona="creative_writer")

    answer = response.get_json()
    assert response.status_code == 200 and answer["imported"] == 2 and answer["skipped"] == []
    messages = history(client, answer["sessions"][0]["session_id"])
    assert [(m["role"], m["content"], m["timestamp"]) for m in messages] == [
        ("user", "Hallo! Wie geht's? 👋", stamp(1710000010)),
        ("assistant", "Sehr gut, danke! 😀", stamp(1710000020)),
        ("user", "[image]", stamp(1710000030)),
        ("assistant", "Ein Bild vom Brandenburger Tor.", stamp(1710000040)),
    ]
    assert messages[3]["metadata"] == {"model": "mistral"}
    session = client.get(f"/api/sessions/{answer['sessions'][0]['session_id']}").get_json()
    assert (session["display_name"], session["persona"]) == ("Grüße aus Berlin 🇩🇪", "creative_writer")
    assert (session["created_at"], session["last_activity"]) == (stamp(1710000000), stamp(1710000300))
    flat = history(client, answer["sessions"][1]["session_id"])
    assert [(m["role"], m["content"]) for m in flat] == [("user", "Hi"), ("assistant", "Hello")]


def test_imported_sessions_are_listed_archived_or_live_when_asked(client):
    kept = post_import(client, OPEN_WEBUI.read_bytes(), user_id="Kim").get_json()
    live = post_import(client, OPEN_WEBUI.read_bytes(), user_id="Lee", archived="false").get_json()

    archived = client.get("/api/sessions", query_string={"user_id": "Kim", "archived": "true"}).get_json()
    assert {s["session_id"] for s in archived["sessions"]} == {s["session_id"] for s in kept["sessions"]}
    listed = client.get("/api/sessions", query_string={"user_id": "Lee"}).get_json()
    assert {s["session_id"] for s in listed["sessions"]} == {s["session_id"] for s in live["sessions"]}
    assert all(s["expires_at"] and not s["archived"] for s in listed["sessions"])


def test_an_unknown_persona_option_is_refused_before_anything_is_read(client, redis_db):
    before = key_dump(redis_db)

    response = post_import(client, CHATGPT.read_bytes(), persona="no-such-persona")

    assert response.status_code == 422 and "persona" in response.get_json()["error"]["fields"]
    assert key_dump(redis_db) == before


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _chatapp(sessions: list) -> bytes:
    return json.dumps({"format": "chatapp.export", "version": 1, "sessions": sessions}).encode()


def _with_cycle() -> bytes:
    good = json.loads(CHATGPT.read_text())[0]  # a good conversation first: it must not be written either
    bad = {
        "title": "Loop",
        "current_node": "b",
        "mapping": {
            "a": {"id": "a", "parent": "b", "children": ["b"], "message": None},
            "b": {"id": "b", "parent": "a", "children": ["a"], "message": None},
        },
    }
    return json.dumps([good, bad]).encode()


GOOD_MESSAGE = {"role": "user", "content": "hi", "timestamp": "2025-01-01T00:00:00.000+00:00", "metadata": {}}
BAD_FILES = [
    ("truncated-chatgpt", CHATGPT.read_bytes()[:5000], 400, "truncated"),
    ("truncated-chatapp", _chatapp([{"messages": [GOOD_MESSAGE] * 50}])[:-200], 400, "truncated"),
    ("not-json", b"this is not JSON", 400, "not valid JSON"),
    ("not-utf8", b'[{"title": "\xff\xfe"}]', 400, "not valid JSON"),
    ("empty", b"", 400, "empty"),
    ("a-number", b"42", 422, "not an export"),
    ("an-empty-list", b"[]", 422, "no conversations"),
    ("a-list-of-numbers", b"[1, 2, 3]", 422, "not an export"),
    ("an-object-of-something-else", b'{"conversations": []}', 422, "not an export"),
    (
        "a-later-item-of-something-else",
        json.dumps([json.loads(CHATGPT.read_text())[0], 7]).encode(),
        422,
        "Conversation 1",
    ),
    (
        "chatapp-newer-version",
        json.dumps({"format": "chatapp.export", "version": 2, "sessions": []}).encode(),
        422,
        "version",
    ),
    (
        "chatapp-sessions-not-a-list",
        json.dumps({"format": "chatapp.export", "version": 1, "sessions": {}}).encode(),
        422,
        "sessions",
    ),
    ("chatapp-system-role", _chatapp([{"messages": [{**GOOD_MESSAGE, "role": "system"}]}]), 422, "role"),
    ("chatapp-bad-timestamp", _chatapp([{"messages": [{**GOOD_MESSAGE, "timestamp": "yesterday"}]}]), 422, "timestamp"),
    ("chatapp-name-not-text", _chatapp([{"display_name": 7}]), 422, "display_name"),
    ("open-webui-without-messages", json.dumps([{"title": "x", "chat": {"models": []}}]).encode(), 422, "messages"),
    ("cycle-in-mapping", _with_cycle(), 422, "cycle"),
    ("deep-list", _deep(10_000), 400, "deep"),
    ("deep-object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "deep"),
    ("deep-in-a-session", _chatapp([{"metadata": "HERE"}]).replace(b'"HERE"', _deep(10_000)), 400, "deep"),
    ("lone-surrogate", _chatapp([{"messages": [{**GOOD_MESSAGE, "content": "\udc00"}]}]), 400, "surrogate"),
]


@pytest.mark.parametrize(("data", "status", "says"), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES])
@pytest.mark.parametrize("multipart", [False, True], ids=["json-body", "multipart"])
def test_a_bad_file_is_refused_and_leaves_redis_exactly_as_it_was(client, api, redis_db, data, status, says, multipart):
    session = api.create(user_id="Already here")
    api.send(session["session_id"], "a message that must stay")
    before = key_dump(redis_db)

    response = post_import(client, data, multipart=multipart, user_id="Importer")

    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == status and says in error["message"], error["message"]
    assert key_dump(redis_db) == before


def test_a_60_mb_file_is_refused_with_413_and_nothing_written(client, redis_db):
    before = key_dump(redis_db)
    data = b"[" + b" " * (60 * 1024 * 1024) + b"]"

    response = post_import(client, data)

    assert response.status_code == 413
    assert "50" in response.get_json()["error"]["message"] or "52,428,800" in response.get_json()["error"]["message"]
    assert key_dump(redis_db) == before


def test_a_chunked_upload_over_the_limit_is_refused_without_holding_it(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, MAX_IMPORT_BYTES=5_000)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-operator-key"
    before = key_dump(redis_db)
    data = CHATGPT.read_bytes()
    assert len(data) > 5_000

    response = client.post(
        "/api/import",
        input_stream=io.BytesIO(data),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    assert key_dump(redis_db) == before


def test_other_routes_keep_the_1_mb_limit(client):
    response = client.post(
        "/api/session/create", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", content_type="application/json"
    )

    assert response.status_code == 413


def test_a_visitor_imports_for_itself_only(app, redis_db):
    visitor = Visitor(app)
    before = key_dump(redis_db)

    refused = visitor.request(
        "POST", "/api/import?user_id=someone-else", data=OPEN_WEBUI.read_bytes(), content_type="application/json"
    )
    assert refused.status_code == 403 and key_dump(redis_db) == before
    no_csrf = visitor.request(
        "POST", "/api/import", csrf=False, data=OPEN_WEBUI.read_bytes(), content_type="application/json"
    )
    assert no_csrf.status_code == 400 and key_dump(redis_db) == before

    done = visitor.request("POST", "/api/import", data=OPEN_WEBUI.read_bytes(), content_type="application/json")
    assert done.status_code == 200 and done.get_json()["user_id"] == visitor.user_id
    listed = visitor.request("GET", "/api/sessions?archived=true").get_json()
    assert {s["session_id"] for s in listed["sessions"]} == {s["session_id"] for s in done.get_json()["sessions"]}


def test_a_visitor_cannot_export_another_visitors_sessions(app):
    alice, bob = Visitor(app), Visitor(app)
    imported = alice.request("POST", "/api/import", data=OPEN_WEBUI.read_bytes(), content_type="application/json")
    alices = imported.get_json()["sessions"][0]["session_id"]

    for response in (
        bob.request("GET", f"/api/sessions/{alices}/export"),
        bob.request("GET", f"/api/sessions/{alices}/export?format=markdown"),
        bob.request("POST", "/api/export", json={"session_ids": [alices]}),
        bob.request("POST", "/api/export", json={"session_ids": [alices], "format": "markdown"}),
    ):
        assert response.status_code == 404
        assert "Grüße" not in response.get_data(as_text=True) and "Hallo" not in response.get_data(as_text=True)
    assert bob.request("POST", "/api/export", json={"user_id": alice.user_id}).status_code == 403
    everything_of_bob = json.loads(bob.request("POST", "/api/export", json={}).get_data())
    assert everything_of_bob["sessions"] == []


def test_imports_count_against_the_visitors_quotas(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, QUOTA_KEPT_SESSIONS=1)
    visitor = Visitor(app)

    response = visitor.request("POST", "/api/import", data=OPEN_WEBUI.read_bytes(), content_type="application/json")

    answer = response.get_json()
    assert response.status_code == 200 and answer["imported"] == 1
    assert answer["skipped"][0]["index"] == 1 and "archived sessions" in answer["skipped"][0]["reason"]
    stored = redis_db.get(next(k for k in redis_db.keys("*used:u:*")))
    assert int(stored) > 0  # the imported messages' bytes count against the bytes quota


def test_a_chatapp_export_keeps_unknown_fields_of_sessions_and_messages(client):
    message = {**GOOD_MESSAGE, "versions": [{"content": "an earlier answer", "timestamp": GOOD_MESSAGE["timestamp"]}]}
    data = _chatapp([{"display_name": "Pinned one", "pinned": True, "title": "A title", "messages": [message]}])

    answer = post_import(client, data, user_id="Pia").get_json()

    exported = export_json(client, session_ids=[answer["sessions"][0]["session_id"]])
    session = exported["sessions"][0]
    assert session["messages"] == [message]
    # pinned is a known field now (issue 12)
    assert (session["pinned"], session["title"], session["display_name"]) == (True, "A title", "Pinned one")


def test_a_cookie_export_is_a_write_and_needs_its_csrf_token(app):
    visitor = Visitor(app)

    refused = visitor.request("POST", "/api/export", csrf=False, json={})
    allowed = visitor.request("POST", "/api/export", json={})

    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]["message"]
    assert allowed.status_code == 200


def test_the_open_mode_takes_the_file_as_json_only(make_app, redis_server, redis_db):
    """With CHATAPP_OPEN_API there is no cookie and no key: a cross-site form could post a multipart file."""
    client = make_app(REDIS_URL=redis_server.url, OPEN_API=True).test_client()

    form = post_import(client, OPEN_WEBUI.read_bytes(), multipart=True)
    body = post_import(client, OPEN_WEBUI.read_bytes())

    assert form.status_code == 415 and body.status_code == 200


def test_an_import_spends_the_sessions_rate_limit(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, SESSION_RATE_LIMIT="1 per minute")
    visitor = Visitor(app)

    first = visitor.request("POST", "/api/import", data=OPEN_WEBUI.read_bytes(), content_type="application/json")
    second = visitor.request("POST", "/api/import", data=OPEN_WEBUI.read_bytes(), content_type="application/json")

    assert first.status_code == 200 and second.status_code == 429 and second.headers["Retry-After"]


def test_imported_conversations_are_found_by_search(client):
    """import_session.lua keeps the search index like any write: words, titles, accents."""
    answer = post_import(client, CHATGPT.read_bytes(), user_id="Ada").get_json()
    kyoto = answer["sessions"][0]["session_id"]

    found = client.get("/api/search", query_string={"q": "okonomiyaki cafe", "user_id": "Ada"}).get_json()

    assert [r["session_id"] for r in found["results"]] == [kyoto]
    assert found["results"][0]["title"] == "Café ☕ plans — 日本語"
    (snippet,) = found["results"][0]["snippets"]
    assert snippet["message_index"] == 3 and snippet["text"][slice(*snippet["highlights"][0])] == "okonomiyaki"
