"""The Redis layout on a real redis-server: expiry, archive, atomicity, round trips, scale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from chatapp.storage import SessionStore, make_message
from chatapp.storage.keys import SHARDS, index_key, messages_key, session_key, shard_of_session
from tests.helpers import OPERATOR_KEY, CountingConnection


@pytest.fixture
def counted(redis_server, redis_db) -> Iterator[tuple[SessionStore, type[CountingConnection]]]:
    counter = type("Counter", (CountingConnection,), {"round_trips": 0})
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=counter, decode_responses=True)
    client = redis.Redis(connection_pool=pool)
    store = SessionStore(client, timeout_seconds=3600)
    store.load_scripts()  # warm: connection made and scripts cached, as in a running app
    counter.round_trips = 0
    yield store, counter
    client.close()
    pool.disconnect()


@pytest.fixture
def store(redis_server, redis_db) -> Iterator[SessionStore]:
    client = redis.Redis(port=redis_server.port, decode_responses=True)
    yield SessionStore(client, timeout_seconds=3600)
    client.close()


def short_lived_store(redis_server, seconds: int) -> SessionStore:
    return SessionStore(redis.Redis(port=redis_server.port, decode_responses=True), seconds)


def live_index(sid: str) -> str:
    return index_key(False, shard=shard_of_session(sid))


def archived_index(sid: str) -> str:
    return index_key(True, shard=shard_of_session(sid))


def every_index(sid: str, user_id: str, persona: str) -> list[str]:
    shard = shard_of_session(sid)
    return [
        index_key(archived, user, persona_, shard)
        for archived in (False, True)
        for user, persona_ in ((None, None), (user_id, None), (None, persona), (user_id, persona))
    ]


def rounds(counter, action) -> int:
    before = counter.round_trips
    action()
    return counter.round_trips - before


# --- round trips ---------------------------------------------------------------------------


def test_each_operation_costs_the_documented_round_trips(counted):
    store, counter = counted
    sid_holder: dict[str, str] = {}

    def create() -> None:
        sid_holder["sid"] = store.create_session("John Doe", "default")["session_id"]

    assert rounds(counter, create) == 1
    sid = sid_holder["sid"]
    message = make_message("user", "hi")
    assert rounds(counter, lambda: store.append_messages(sid, [message])) == 1
    assert rounds(counter, lambda: store.get_session(sid)) == 1
    assert rounds(counter, lambda: store.read_messages(sid, limit=50)) == 1
    assert rounds(counter, lambda: store.history(sid)) == 1
    assert rounds(counter, lambda: store.history("John Doe")) == 1  # the user's latest session, in one script
    assert rounds(counter, lambda: store.clear_session(sid)) == 1
    assert rounds(counter, lambda: store.clear_session("John Doe")) == 1
    assert rounds(counter, lambda: store.update_session(sid, {"display_name": "x"})) == 1
    assert rounds(counter, lambda: store.list_sessions(user_id="John Doe")) == 1  # one shard
    assert rounds(counter, lambda: store.list_sessions(persona="default", user_id="John Doe")) == 1
    # every shard at once in one script on a single server (a cluster takes two: tests/test_cluster.py)
    assert rounds(counter, lambda: store.list_sessions()) == 1
    assert rounds(counter, lambda: store.list_sessions(persona="default")) == 1
    # the index move happens in the same script as the change
    assert rounds(counter, lambda: store.update_session(sid, {"archived": True})) == 1
    assert rounds(counter, lambda: store.delete_session(sid)) == 1


def test_scripts_reload_by_themselves_after_script_flush(store, redis_db):
    sid = store.create_session("u", "default")["session_id"]
    redis_db.script_flush()

    session = store.append_messages(sid, [make_message("user", "after flush")])

    assert session is not None and session["message_count"] == 1


def test_post_message_offline_costs_one_round_trip(redis_server, redis_db, make_app):
    counter = type("Counter", (CountingConnection,), {"round_trips": 0})
    app = make_app(REDIS_URL=redis_server.url, REDIS_OPTIONS={"connection_class": counter})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    sid = client.post("/api/session/create", json={}, headers=headers).get_json()["session_id"]
    client.post(f"/api/sessions/{sid}/messages", json={"content": "warm up"}, headers=headers)
    counter.round_trips = 0

    response = client.post(f"/api/sessions/{sid}/messages", json={"content": "hello"}, headers=headers)

    assert response.status_code == 201
    assert counter.round_trips == 1  # no model: the user message and the known reply go in together


# --- expiry ------------------------------------------------------------------------------


def test_every_key_of_a_session_expires_together_and_leaves_no_ghost(redis_server, redis_db):
    store = short_lived_store(redis_server, 1)
    sid = store.create_session("ghost", "default")["session_id"]
    store.append_messages(sid, [make_message("user", "boo")])
    assert redis_db.pttl(session_key(sid)) == pytest.approx(redis_db.pttl(messages_key(sid)), abs=50)

    time.sleep(1.2)

    assert not redis_db.exists(session_key(sid), messages_key(sid))
    assert store.get_session(sid) is None
    assert store.history("ghost") is None
    assert store.list_sessions() == ([], 0)
    assert store.list_sessions(user_id="ghost") == ([], 0)
    assert store.list_sessions(persona="default") == ([], 0)
    assert store.append_messages(sid, [make_message("user", "late")]) is None
    assert not redis_db.exists(session_key(sid), messages_key(sid))  # not re-created by a write
    store.redis.close()


def test_each_write_slides_the_expiry_of_all_keys(redis_server, redis_db):
    store = short_lived_store(redis_server, 2)
    sid = store.create_session("slider", "default")["session_id"]
    store.append_messages(sid, [make_message("user", "one")])

    for write in (
        lambda: store.append_messages(sid, [make_message("user", "two")]),
        lambda: store.update_session(sid, {"display_name": "renamed"}),
        lambda: store.clear_session(sid),
    ):
        time.sleep(1.1)  # more than half the timeout has passed: only the write keeps it alive
        write()
        assert redis_db.pttl(session_key(sid)) > 1500

    store.append_messages(sid, [make_message("user", "three")])
    ttl_hash, ttl_list = redis_db.pttl(session_key(sid)), redis_db.pttl(messages_key(sid))
    assert abs(ttl_hash - ttl_list) < 50
    score = redis_db.zscore(live_index(sid), sid)
    assert score == int(redis_db.hget(session_key(sid), "expires_ms"))
    assert store.list_sessions()[1] == 1
    store.redis.close()


def test_archive_keeps_forever_and_unarchive_restores_expiry(store, redis_db):
    sid = store.create_session("keeper", "default")["session_id"]
    store.append_messages(sid, [make_message("user", "precious")])

    store.update_session(sid, {"archived": True})

    assert redis_db.pttl(session_key(sid)) == -1 and redis_db.pttl(messages_key(sid)) == -1
    assert redis_db.zscore(live_index(sid), sid) is None
    assert redis_db.zscore(archived_index(sid), sid) is not None
    store.append_messages(sid, [make_message("user", "still archived")])
    assert redis_db.pttl(session_key(sid)) == -1  # writes to an archived session keep it forever

    store.update_session(sid, {"archived": False})

    assert 0 < redis_db.pttl(session_key(sid)) <= 3600_000
    assert 0 < redis_db.pttl(messages_key(sid)) <= 3600_000
    assert redis_db.zscore(archived_index(sid), sid) is None
    assert redis_db.zscore(live_index(sid), sid) is not None


def test_delete_leaves_no_key_and_no_index_entry(store, redis_db):
    sid = store.create_session("gone", "creative_writer")["session_id"]
    store.append_messages(sid, [make_message("user", "bye")])

    assert store.delete_session(sid) is True

    assert not redis_db.exists(session_key(sid), messages_key(sid))
    for index in every_index(sid, "gone", "creative_writer"):
        assert redis_db.zscore(index, sid) is None
    assert len(set(every_index(sid, "gone", "creative_writer"))) == 8


def test_listing_repairs_a_ghost_left_behind_by_a_lost_session(store, redis_db):
    keep = store.create_session("u", "default")["session_id"]
    lost = store.create_session("u", "default")["session_id"]
    redis_db.delete(session_key(lost), messages_key(lost))  # e.g. removed by hand or evicted

    sessions, total = store.list_sessions()

    assert [s["session_id"] for s in sessions] == [keep] and total == 1
    assert redis_db.zscore(live_index(lost), lost) is None
    assert store.list_sessions()[1] == 1
    assert store.list_sessions(user_id="u") == ([store.get_session(keep)], 1)


def test_ordering_by_last_activity_is_exact_within_one_second(store):
    ids = [store.create_session("fast", "default")["session_id"] for _ in range(5)]
    for sid in (ids[2], ids[0], ids[4]):
        time.sleep(0.002)
        store.append_messages(sid, [make_message("user", "tick")])

    listed = [s["session_id"] for s in store.list_sessions(user_id="fast")[0]]

    assert listed[:3] == [ids[4], ids[0], ids[2]]


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_appends_to_one_session_lose_nothing(redis_server, redis_db):
    client = redis.Redis(port=redis_server.port, decode_responses=True, max_connections=32)
    store = SessionStore(client, timeout_seconds=3600)
    sid = store.create_session("busy", "default")["session_id"]
    threads_count, per_thread = 16, 25
    start = threading.Barrier(threads_count)

    def writer(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            store.append_messages(sid, [make_message("user", f"{n}-{i}")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    session, messages, _ = store.read_messages(sid)
    assert session["message_count"] == len(messages) == threads_count * per_thread
    assert redis_db.llen(messages_key(sid)) == threads_count * per_thread
    assert {m["content"] for m in messages} == {f"{n}-{i}" for n in range(threads_count) for i in range(per_thread)}
    client.close()


# --- scale ---------------------------------------------------------------------------------


def bulk_create(store: SessionStore, count: int) -> None:
    for n in range(count):
        store.create_session(f"user {n % 500}", ("default", "creative_writer")[n % 2])


def test_listing_never_scans_and_a_page_costs_the_same_at_1000_and_20000(counted, redis_db):
    store, counter = counted
    costs = {}
    for total in (1_000, 20_000):
        bulk_create(store, total - store.list_sessions(limit=1)[1])
        redis_db.config_resetstat()
        trips = rounds(counter, lambda: store.list_sessions(limit=50))
        stats = redis_db.info("commandstats")
        calls = {name: stat["calls"] for name, stat in stats.items()}
        costs[total] = (trips, calls)
        assert store.list_sessions(limit=50)[1] == total

    for trips, calls in costs.values():  # the same bounded work at 1,000 and at 20,000
        assert trips == 1 and calls["cmdstat_evalsha"] == 1
        assert not {"cmdstat_scan", "cmdstat_keys", "cmdstat_zrange"} & set(calls)
        assert calls["cmdstat_zcount"] == SHARDS  # the total, shard by shard
        assert calls["cmdstat_zrevrangebyscore"] <= 2 * SHARDS  # each shard's head, a few at a time
        assert calls["cmdstat_hmget"] <= SHARDS
