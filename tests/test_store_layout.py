"""Storage layout v2 on a real redis-server: shards, one script per write, summaries, pruning."""

from __future__ import annotations

import time

import pytest
import redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from chatapp.schemas import session_schema
from chatapp.storage import SessionStore, make_message
from chatapp.storage.keys import (
    SHARDS,
    index_key,
    messages_key,
    session_key,
    shard_of_session,
    shard_of_user,
    shard_tag,
    summaries_key,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_server, redis_db) -> SessionStore:
    return SessionStore(redis_db, timeout_seconds=3600)


def test_shard_tags_are_evenly_spaced_over_the_slots():
    share = REDIS_CLUSTER_HASH_SLOTS / SHARDS
    for shard in range(SHARDS):
        assert shard * share <= key_slot(shard_tag(shard).encode()) < (shard + 1) * share


def test_a_session_lives_in_its_users_shard_and_its_id_says_which(store):
    session = store.create_session("John Doe", "default")
    sid = session["session_id"]

    assert shard_of_session(sid) == shard_of_user("John Doe")
    keys = [session_key(sid), messages_key(sid), summaries_key(shard_of_user("John Doe"))]
    keys += [index_key(False, "John Doe"), index_key(False, "John Doe", "default")]
    assert len({key_slot(k.encode()) for k in keys}) == 1


def test_users_spread_over_every_shard(store):
    assert {shard_of_user(f"user {i}") for i in range(600)} == set(range(SHARDS))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"display_name": 'Ünïcode ✓ "quoted" </script>', "description": "line\nbreak\ttab \\ slash /"},
        {"metadata": {"big": 12345678901234567, "float": 2.5, "nested": {"a": [1, None, True]}, "e": "é"}},
    ],
)
def test_the_stored_summary_is_exactly_what_the_api_answers(store, fields):
    import json

    session = store.create_session("Ann", "creative_writer", **fields)
    sid = session["session_id"]
    store.append_messages(sid, [make_message("user", "hi")])
    archived = store.update_session(sid, {"archived": True})

    [summary] = store.list_page(user_id="Ann", archived=True).summaries
    assert json.loads(summary) == session_schema.dump(archived)
    assert json.loads(summary)["metadata"] == fields.get("metadata", {})  # no precision lost on the way


def test_archiving_moves_a_session_between_every_index_in_one_step(store, redis_db):
    sid = store.create_session("Ann", "default")["session_id"]
    store.append_messages(sid, [make_message("user", "hi")])
    shard = shard_of_user("Ann")
    live = [
        index_key(False, shard=shard),
        index_key(False, "Ann"),
        index_key(False, persona="default", shard=shard),
        index_key(False, "Ann", "default"),
    ]
    arch = [k.replace(":live", ":arch") for k in live]

    store.update_session(sid, {"archived": True})

    assert [redis_db.zscore(k, sid) for k in live] == [None] * 4
    assert all(redis_db.zscore(k, sid) for k in arch)
    assert redis_db.pttl(session_key(sid)) == -1 and redis_db.pttl(messages_key(sid)) == -1


def test_a_retried_write_is_applied_once(store, monkeypatch):
    """redis-py resends a command after a lost connection; the write token makes that harmless."""
    sid = store.create_session("Ann", "default")["session_id"]
    monkeypatch.setattr(SessionStore, "_token", staticmethod(lambda: "same-token"))

    store.append_messages(sid, [make_message("user", "once")])
    again = store.append_messages(sid, [make_message("user", "once")])

    assert again is not None and again["message_count"] == 1


def test_expired_sessions_leave_no_index_entry_or_summary_once_their_shard_is_written(redis_server, redis_db):
    brief = SessionStore(redis_db, timeout_seconds=1)
    lasting = SessionStore(redis_db, timeout_seconds=3600)
    gone = [brief.create_session("same user", "default")["session_id"] for _ in range(5)]
    deadline = time.monotonic() + 5
    while redis_db.exists(*[session_key(s) for s in gone]) and time.monotonic() < deadline:
        time.sleep(0.1)

    kept = lasting.create_session("same user", "default")["session_id"]  # a write in the same shard

    shard = shard_of_user("same user")
    assert redis_db.hkeys(summaries_key(shard)) == [kept]
    for key in redis_db.scan_iter(f"{index_key(False, shard=shard)}*"):
        assert redis_db.zrange(key, 0, -1) == [kept], key


def test_history_by_user_id_reads_the_newest_page_of_the_latest_session(store):
    older = store.create_session("Ann", "default")["session_id"]
    newer = store.create_session("Ann", "default")["session_id"]
    store.append_messages(newer, [make_message("user", f"m{i}") for i in range(250)])
    store.append_messages(older, [make_message("user", "now the latest")])

    session, messages, first = store.history("Ann")

    assert session["session_id"] == older and [m["content"] for m in messages] == ["now the latest"]
    session, messages, first = store.history(newer)
    assert len(messages) == 200 and first == 50 and messages[-1]["content"] == "m249"
    _, older_page, first = store.history(newer, before=first)
    assert [m["content"] for m in older_page] == [f"m{i}" for i in range(50)] and first == 0


def test_operator_listing_merges_every_shard_in_activity_order(store):
    made = [store.create_session(f"user {i}", "default")["session_id"] for i in range(40)]
    time.sleep(0.005)
    for sid in made[:5]:
        store.append_messages(sid, [make_message("user", "bump")])
        time.sleep(0.002)

    first, rest = store.list_page(limit=10), store.list_page(offset=10, limit=40)

    listed = first.sessions() + rest.sessions()
    assert first.total == rest.total == 40 and len(listed) == 40
    assert [s["session_id"] for s in listed[:5]] == made[:5][::-1]  # the latest activity first
    assert listed == sorted(listed, key=lambda s: (s["expires_at"], s["session_id"]), reverse=True)
    assert len({shard_of_session(s) for s in made}) > 3


def test_a_persona_listing_spans_users_and_shards(store):
    writers = [store.create_session(f"writer {i}", "creative_writer")["session_id"] for i in range(12)]
    store.create_session("someone", "default")

    page = store.list_page(persona="creative_writer", limit=50)

    assert page.total == 12 and {s["session_id"] for s in page.sessions()} == set(writers)


def test_a_cluster_client_is_not_needed_to_reach_a_shard(redis_server):
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        assert SessionStore(client, 60).ping()
