"""The canonical /api/sessions resources: details, rename, archive, delete, messages, paging."""

from __future__ import annotations

from urllib.parse import quote

import pytest


def test_two_sessions_of_one_user_in_the_same_second_get_different_ids(api):
    ids = {api.create(user_id="John Doe")["session_id"] for _ in range(20)}

    assert len(ids) == 20


@pytest.mark.parametrize("user_id", ["John Doe", "a/b/c", "名前 🙂", "user?x=1&y=#2", "100%", "session_x"])
def test_any_user_id_works_in_the_user_id_paths(client, api, user_id):
    session = api.create(user_id=user_id)
    api.send(session["session_id"], "Hi there")

    segment = quote(user_id, safe="")  # as any HTTP client must send it
    history = client.get(f"/api/session/{segment}/history")
    cleared = client.delete(f"/api/session/{segment}/clear")

    assert history.status_code == 200, history.get_json()
    assert history.get_json()["user_id"] == user_id
    assert history.get_json()["message_count"] == 2
    assert cleared.status_code == 200
    assert cleared.get_json()["message"] == f"Session cleared for user {user_id}"
    assert client.get(f"/api/session/{segment}/history").get_json()["message_count"] == 0


def test_user_id_path_means_the_users_most_recently_active_session(client, api):
    older = api.create()
    newer = api.create()
    api.send(older["session_id"], "bump the older one")

    body = client.get("/api/session/John Doe/history").get_json()

    assert body["session_id"] == older["session_id"]
    assert newer["session_id"] != older["session_id"]


def test_session_id_path_reads_that_exact_session(client, api):
    first = api.create()
    api.create()
    api.send(first["session_id"], "first!")

    body = client.get(f"/api/session/{first['session_id']}/history").get_json()

    assert body["session_id"] == first["session_id"]
    assert body["messages"][0]["content"] == "first!"


def test_clear_keeps_session_but_drops_messages(client, api):
    session = api.create(display_name="Keep me")
    api.send(session["session_id"])

    client.delete(f"/api/session/{session['session_id']}/clear")
    detail = client.get(f"/api/sessions/{session['session_id']}").get_json()

    assert detail["display_name"] == "Keep me"
    assert detail["message_count"] == 0
    page = client.get(f"/api/sessions/{session['session_id']}/messages").get_json()
    assert page["messages"] == []


def test_patch_renames_and_describes_and_null_removes(client, api):
    session = api.create()
    sid = session["session_id"]

    renamed = client.patch(f"/api/sessions/{sid}", json={"display_name": "Plans", "description": "Trip"})
    removed = client.patch(f"/api/sessions/{sid}", json={"description": None})

    assert renamed.status_code == 200
    assert renamed.get_json()["display_name"] == "Plans"
    assert renamed.get_json()["description"] == "Trip"
    assert removed.get_json()["description"] is None
    assert removed.get_json()["display_name"] == "Plans"


def test_archive_hides_from_default_list_and_unarchive_restores(client, api):
    session = api.create()
    sid = session["session_id"]

    archived = client.patch(f"/api/sessions/{sid}", json={"archived": True}).get_json()

    assert archived["archived"] is True and archived["expires_at"] is None
    assert api.list()["count"] == 0
    assert [s["session_id"] for s in api.list(archived="true")["sessions"]] == [sid]

    restored = client.patch(f"/api/sessions/{sid}", json={"archived": False}).get_json()

    assert restored["archived"] is False and restored["expires_at"] is not None
    assert [s["session_id"] for s in api.list()["sessions"]] == [sid]
    assert api.list(archived="true")["count"] == 0


def test_delete_removes_session_and_its_history(client, api):
    session = api.create()
    sid = session["session_id"]
    api.send(sid)

    deleted = client.delete(f"/api/sessions/{sid}")

    assert deleted.status_code == 200
    assert client.get(f"/api/sessions/{sid}").status_code == 404
    assert client.get(f"/api/session/{sid}/history").status_code == 404
    assert client.get("/api/session/John Doe/history").status_code == 404
    assert api.list()["count"] == 0
    assert client.delete(f"/api/sessions/{sid}").status_code == 404


def test_post_message_stores_user_message_and_offline_reply(client, api):
    sid = api.create(persona="technical_support")["session_id"]

    body = api.send(sid, "My printer is on fire")

    assert body["user_message"]["role"] == "user"
    assert body["user_message"]["content"] == "My printer is on fire"
    assert body["assistant_message"]["role"] == "assistant"
    assert "no language model is connected" in body["assistant_message"]["content"]
    detail = client.get(f"/api/sessions/{sid}").get_json()
    assert detail["message_count"] == 2


def test_messages_page_returns_newest_first_page_in_chronological_order_with_cursor(client, api):
    sid = api.create()["session_id"]
    for n in range(5):
        api.send(sid, f"message {n}")  # 10 messages: user/assistant pairs

    first = client.get(f"/api/sessions/{sid}/messages", query_string={"limit": 4}).get_json()
    second = client.get(
        f"/api/sessions/{sid}/messages", query_string={"limit": 4, "before": first["next_before"]}
    ).get_json()
    third = client.get(
        f"/api/sessions/{sid}/messages", query_string={"limit": 4, "before": second["next_before"]}
    ).get_json()

    user_texts = lambda page: [m["content"] for m in page["messages"] if m["role"] == "user"]  # noqa: E731
    assert user_texts(first) == ["message 3", "message 4"]
    assert user_texts(second) == ["message 1", "message 2"]
    assert user_texts(third) == ["message 0"]
    assert len(third["messages"]) == 2 and third["next_before"] is None
    assert first["message_count"] == 10


def test_list_pages_with_limit_and_offset_and_counts_the_total(api):
    created = [api.create(user_id=f"user {n}")["session_id"] for n in range(7)]

    first = api.list(limit=3)
    second = api.list(limit=3, offset=first["next_offset"])
    last = api.list(limit=3, offset=second["next_offset"])

    assert first["count"] == second["count"] == last["count"] == 7
    listed = [s["session_id"] for page in (first, second, last) for s in page["sessions"]]
    assert listed == list(reversed(created))  # newest activity first
    assert last["next_offset"] is None


def test_list_filters_by_user_and_persona(api):
    a1 = api.create(user_id="alice", persona="creative_writer")["session_id"]
    a2 = api.create(user_id="alice", persona="default")["session_id"]
    b1 = api.create(user_id="bob", persona="creative_writer")["session_id"]

    assert {s["session_id"] for s in api.list(user_id="alice")["sessions"]} == {a1, a2}
    assert {s["session_id"] for s in api.list(persona="creative_writer")["sessions"]} == {a1, b1}
    both = api.list(user_id="alice", persona="creative_writer")
    assert [s["session_id"] for s in both["sessions"]] == [a1] and both["count"] == 1
    assert api.list(user_id="nobody")["count"] == 0


def test_personas_lists_the_guides_four_without_system_prompts(client):
    body = client.get("/api/personas").get_json()

    names = {p["id"]: p["name"] for p in body["personas"]}
    assert names == {
        "default": "Default Assistant",
        "mental_health_nurse": "Mental Health Nurse",
        "technical_support": "Technical Support",
        "creative_writer": "Creative Writer",
    }
    assert all("system_prompt" not in p for p in body["personas"])
    assert all(p["description"] and p["greeting"] for p in body["personas"])
