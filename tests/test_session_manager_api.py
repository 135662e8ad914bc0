"""Issue 12's API: titles from the first message, pinning, search, and bulk actions, on a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis

from chatapp.storage.keys import index_key, messages_key, session_key
from tests.helpers import Api, Visitor


def pttl(redis_db: redis.Redis, session_id: str) -> tuple[int, int]:
    return redis_db.pttl(session_key(session_id)), redis_db.pttl(messages_key(session_id))


# --- titles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_message", "title"),
    [
        ("How do I reset my router?", "How do I reset my router?"),
        ("  lots\n\tof   white\n\nspace  ", "lots of white space"),
        (
            "Please help me plan a week of vegetarian dinners for a family of four with two picky kids",
            "Please help me plan a week of vegetarian dinners for a…",
        ),
        ("x" * 80, "x" * 60 + "…"),
        ("Grüße aus Köln, wie geht es euch allen heute an diesem wunderbar sonnigen Tag", None),
        ("日本語" * 30, "日本語" * 20 + "…"),
    ],
)
def test_first_user_message_titles_an_unnamed_session(api: Api, first_message: str, title: str | None) -> None:
    session = api.create()
    assert session["title"] is None

    api.send(session["session_id"], first_message)

    got = api.client.get(f"/api/sessions/{session['session_id']}").get_json()["title"]
    if title is None:  # cut at a word boundary, at most 60 characters and an ellipsis
        assert got.endswith("…") and len(got) <= 61 and first_message.startswith(got[:-1])
        assert first_message[len(got) - 1] == " "
    else:
        assert got == title
    assert api.list()["sessions"][0]["title"] == got


def test_title_comes_from_the_first_message_only_and_the_given_name_stays_beside_it(api: Api) -> None:
    session = api.create(display_name="My own name")
    api.send(session["session_id"], "first words")
    api.send(session["session_id"], "second words")

    listed = api.list()["sessions"][0]
    assert (listed["display_name"], listed["title"]) == ("My own name", "first words")


# --- pinning ---------------------------------------------------------------------------------


def test_pin_keeps_the_session_for_ever_lists_it_first_and_unpin_restores_the_expiry(
    api: Api, redis_db: redis.Redis
) -> None:
    older = api.create(display_name="older")
    newer = api.create(display_name="newer")
    assert [s["display_name"] for s in api.list()["sessions"]] == ["newer", "older"]

    pinned = api.client.patch(f"/api/sessions/{older['session_id']}", json={"pinned": True}).get_json()

    assert pinned["pinned"] is True and pinned["expires_at"] is None
    assert pttl(redis_db, older["session_id"])[0] == -1
    listed = api.list()
    assert [s["display_name"] for s in listed["sessions"]] == ["older", "newer"]
    assert listed["sessions"][0]["pinned"] is True and listed["sessions"][0]["expires_at"] is None
    assert listed["count"] == 2
    # activity in a pinned session keeps it kept
    api.send(older["session_id"], "still here")
    assert pttl(redis_db, older["session_id"]) == (-1, -1)
    # the user's most recently active session is still the one last used
    api.send(newer["session_id"], "latest")
    assert api.client.get("/api/session/John Doe/history").get_json()["session_id"] == newer["session_id"]

    unpinned = api.client.patch(f"/api/sessions/{older['session_id']}", json={"pinned": False}).get_json()

    assert unpinned["pinned"] is False and unpinned["expires_at"] is not None
    assert all(0 < ttl <= 3600_000 for ttl in pttl(redis_db, older["session_id"]))
    assert [s["pinned"] for s in api.list()["sessions"]] == [False, False]  # by activity again (unpinning is one)


def test_a_pinned_session_outlives_the_idle_expiry(api: Api, redis_db: redis.Redis) -> None:
    kept, dropped = api.create(display_name="kept"), api.create(display_name="dropped")
    api.client.patch(f"/api/sessions/{kept['session_id']}", json={"pinned": True})
    # the idle hour passes for the other one (its expiry moved to the past)
    redis_db.pexpire(session_key(dropped["session_id"]), 1)
    redis_db.zadd(index_key(False, "John Doe"), {dropped["session_id"]: int(time.time() * 1000) - 1})
    time.sleep(0.01)

    assert [s["display_name"] for s in api.list()["sessions"]] == ["kept"]


def test_archiving_a_pinned_session_moves_it_and_unarchiving_brings_it_back_pinned(api: Api) -> None:
    session = api.create()
    sid = session["session_id"]
    api.client.patch(f"/api/sessions/{sid}", json={"pinned": True})
    api.client.patch(f"/api/sessions/{sid}", json={"archived": True})
    assert api.list()["count"] == 0 and api.list(archived="true")["count"] == 1

    back = api.client.patch(f"/api/sessions/{sid}", json={"archived": False}).get_json()

    assert back["pinned"] is True and back["archived"] is False and back["expires_at"] is None


@pytest.mark.parametrize("body", [{"pinned": "yes"}, {"pinned": 1}, {"pinned": None}])
def test_pinned_must_be_a_json_boolean(api: Api, body: dict) -> None:
    sid = api.create()["session_id"]

    response = api.client.patch(f"/api/sessions/{sid}", json=body)

    assert response.status_code == 422
    assert "pinned" in response.get_json()["error"]["fields"]


# --- search ----------------------------------------------------------------------------------


def test_search_finds_by_name_title_and_description_in_any_case(api: Api) -> None:
    named = api.create(display_name="Garden plans")
    described = api.create(description="Notes about the GARDEN shed")
    titled = api.create()
    api.send(titled["session_id"], "what should I plant in my garden in May?")
    api.create(display_name="Taxes")
    api.create(user_id="someone else", display_name="garden of someone else")

    found = api.list(user_id="John Doe", q="garden")

    assert found["count"] == 3
    assert [s["session_id"] for s in found["sessions"]] == [
        titled["session_id"],
        described["session_id"],
        named["session_id"],
    ]
    assert api.list(user_id="John Doe", q="GARDEN", limit=1, offset=1)["sessions"][0] == found["sessions"][1]
    assert api.list(user_id="John Doe", q="nothing like it")["count"] == 0
    assert api.list(user_id="John Doe", q="garden", archived="true")["count"] == 0


def test_a_visitor_searches_only_its_own_sessions(app, api: Api) -> None:
    alice = Visitor(app)
    alice.create(display_name="alice garden")
    api.create(display_name="John's garden")

    found = alice.request("GET", "/api/sessions?q=garden").get_json()

    assert [s["display_name"] for s in found["sessions"]] == ["alice garden"]


def test_an_operator_searches_everyone_without_a_user(api: Api) -> None:
    api.create(user_id="ann", display_name="Garden A")
    api.create(user_id="bob", display_name="garden B")
    pinned = api.create(user_id="cid", display_name="GARDEN C")
    api.create(user_id="dan", display_name="Kitchen")
    api.client.patch(f"/api/sessions/{pinned['session_id']}", json={"pinned": True})

    found = api.list(q="garden")

    assert found["count"] == 3
    assert [s["display_name"] for s in found["sessions"]] == ["GARDEN C", "garden B", "Garden A"]
    assert [s["display_name"] for s in api.list(q="garden", offset=1, limit=1)["sessions"]] == ["garden B"]


# --- bulk ------------------------------------------------------------------------------------


def bulk(caller, action: str, ids: list[str]):
    if isinstance(caller, Visitor):
        return caller.request("POST", "/api/sessions/bulk", json={"action": action, "session_ids": ids})
    return caller.client.post("/api/sessions/bulk", json={"action": action, "session_ids": ids})


def test_bulk_archive_pin_and_delete_act_on_each_and_answer_per_session(api: Api, redis_db: redis.Redis) -> None:
    ids = [api.create(display_name=f"s{i}")["session_id"] for i in range(4)]
    missing = "session_nobody_1700000000_0000000000"

    archived = bulk(api, "archive", [ids[0], missing, ids[1]])

    assert archived.status_code == 200
    body = archived.get_json()
    assert body["done"] == 2 and [r["status"] for r in body["results"]] == [200, 404, 200]
    assert body["results"][0]["session"]["archived"] is True and body["results"][1]["session"] is None
    assert {s["session_id"] for s in api.list(archived="true")["sessions"]} == {ids[0], ids[1]}

    assert bulk(api, "pin", [ids[2]]).get_json()["results"][0]["session"]["pinned"] is True
    assert pttl(redis_db, ids[2])[0] == -1
    assert bulk(api, "unarchive", [ids[0]]).get_json()["done"] == 1
    assert bulk(api, "unpin", [ids[2]]).get_json()["done"] == 1
    assert pttl(redis_db, ids[2])[0] > 0

    deleted = bulk(api, "delete", [ids[0], ids[2], ids[3]]).get_json()

    assert deleted["done"] == 3 and all(r["session"] is None for r in deleted["results"])
    assert [s["session_id"] for s in api.list()["sessions"]] == []
    assert [s["session_id"] for s in api.list(archived="true")["sessions"]] == [ids[1]]
    assert not redis_db.exists(session_key(ids[0]), session_key(ids[2]), session_key(ids[3]))


def test_bulk_refuses_another_visitors_ids_and_changes_nothing_of_theirs(app, api: Api) -> None:
    alice, bob = Visitor(app), Visitor(app)
    alices = [alice.create(display_name=f"a{i}")["session_id"] for i in range(2)]
    bobs = bob.create(display_name="b")["session_id"]
    before = api.list(user_id=alice.user_id)

    for action in ("archive", "pin", "delete"):
        answer = bulk(bob, action, [*alices, bobs]).get_json()
        assert [r["status"] for r in answer["results"]] == [404, 404, 200], action
        assert answer["results"][0]["session"] is None

    assert api.list(user_id=alice.user_id) == before


def test_bulk_counts_a_quota_per_session_and_does_the_rest(app, make_app, redis_server) -> None:
    strict = make_app(REDIS_URL=redis_server.url, QUOTA_KEPT_SESSIONS=1)
    visitor = Visitor(strict)
    ids = [visitor.create()["session_id"] for _ in range(2)]

    answer = bulk(visitor, "archive", ids).get_json()

    assert [r["status"] for r in answer["results"]] == [200, 403]
    assert "Quota reached" in answer["results"][1]["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "session_ids": ["session_a"]}, "action"),
        ({"action": "pin", "session_ids": []}, "session_ids"),
        ({"action": "pin", "session_ids": ["session_a", "session_a"]}, "session_ids"),
        ({"action": "pin", "session_ids": [f"s{i}" for i in range(101)]}, "session_ids"),
        ({"action": "pin", "session_ids": "session_a"}, "session_ids"),
        ({"action": "pin", "session_ids": [7]}, "session_ids"),
        ({"action": "pin", "session_ids": ["a", "", 7, "a"]}, "session_ids"),
        ({"action": "pin"}, "session_ids"),
        ({"session_ids": ["session_a"]}, "action"),
        ({"action": "pin", "session_ids": ["session_a"], "extra": 1}, "extra"),
    ],
)
def test_bulk_refuses_bad_input_with_the_error_envelope(api: Api, body: dict, field: str) -> None:
    response = api.client.post("/api/sessions/bulk", json=body)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_bulk_is_a_documented_visitor_write_with_csrf_and_a_rate_limit(app) -> None:
    visitor = Visitor(app)
    sid = visitor.create()["session_id"]

    refused = visitor.request("POST", "/api/sessions/bulk", json={"action": "pin", "session_ids": [sid]}, csrf=False)

    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]["message"]
    operation = app.test_client().get("/api/openapi.json").get_json()["paths"]["/api/sessions/bulk"]["post"]
    assert operation["operationId"] == "bulk_sessions"
    assert {"200", "400", "422", "429"} <= set(operation["responses"])
