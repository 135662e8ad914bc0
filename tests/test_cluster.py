"""The whole session lifecycle through the API on a real three-master Redis Cluster.

One cluster per module (starting it takes a second or two); each test empties it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis.cluster
from flask import Flask

from chatapp.settings import OFFLINE_HINT
from chatapp.storage.keys import (
    SHARDS,
    index_key,
    messages_key,
    session_key,
    shard_of_session,
    shard_prefix,
    summaries_key,
)
from tests.helpers import OPERATOR_KEY, Api, AppFactory
from tests.servers import RedisCluster

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def rc(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    """A direct cluster client, every master emptied before the test."""
    with cluster.client(decode_responses=True) as client:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
        flush_scripts(cluster)
        yield client


def flush_scripts(cluster: RedisCluster) -> None:
    """Forget every loaded Lua script on every master, as a restart or failover would."""
    for node in cluster.nodes:
        with node.client() as c:
            c.script_flush()


@pytest.fixture
def cluster_app(make_app: AppFactory) -> Callable[..., Flask]:
    """cluster_app(cluster, **config): an app whose store is the cluster."""

    def build(cluster: RedisCluster, **config) -> Flask:
        # The store is under test here; the limiter's own cluster use is tested in test_limits.py.
        return make_app(REDIS_URL=cluster.url, REDIS_CLUSTER=True, **{"RATELIMIT_ENABLED": False, **config})

    return build


@pytest.fixture
def api(cluster: RedisCluster, rc: redis.cluster.RedisCluster, cluster_app: Callable[..., Flask]) -> Api:
    app = cluster_app(cluster)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return Api(client)


def node_of(rc: redis.cluster.RedisCluster, key: str) -> str:
    return rc.get_node_from_key(key).name


def test_health_reports_the_cluster_store(api: Api) -> None:
    response = api.client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "redis": "ok",
        "store": "cluster",
        "assistant": "offline",
        "assistant_hint": OFFLINE_HINT,
        "search": "built-in",
    }


def test_full_lifecycle_on_a_three_master_cluster(api: Api, rc: redis.cluster.RedisCluster) -> None:
    c = api.client
    assert len(rc.get_primaries()) == 3

    # create: sessions of several users and personas
    sessions = [
        api.create(user_id=f"user {i}", persona="technical_support" if i % 3 == 0 else "default") for i in range(12)
    ]
    sids = [s["session_id"] for s in sessions]
    for session in sessions:
        assert session["message_count"] == 0 and session["expires_at"]

    # the data really lives on more than one master, and each session's two keys together
    for sid in sids:
        api.send(sid, f"hello from {sid}")
    homes = {node_of(rc, session_key(sid)) for sid in sids}
    assert len(homes) > 1, homes
    for sid in sids:
        assert node_of(rc, session_key(sid)) == node_of(rc, messages_key(sid))
        assert rc.exists(session_key(sid), messages_key(sid)) == 2
    # ... and every index and summary of a session lives beside it, in its shard
    for sid, session in zip(sids, sessions, strict=True):
        shard = shard_of_session(sid)
        beside = [summaries_key(shard), index_key(False, shard=shard), index_key(False, session["user_id"])]
        beside.append(index_key(False, session["user_id"], session["persona"]))
        assert {node_of(rc, k) for k in beside} == {node_of(rc, session_key(sid))}

    # messages: post, page, history by session id and by user id
    first = sids[0]
    exchange = api.send(first, "second message")
    assert exchange["assistant_message"]["role"] == "assistant"
    page = c.get(f"/api/sessions/{first}/messages", query_string={"limit": 2}).get_json()
    assert page["message_count"] == 4
    assert [m["content"] for m in page["messages"]][0] == "second message"
    assert page["next_before"] == 2
    by_id = c.get(f"/api/session/{first}/history").get_json()
    assert by_id["session_id"] == first and by_id["message_count"] == 4
    assert by_id["messages"][0]["content"] == f"hello from {first}"
    by_user = c.get("/api/session/user 0/history").get_json()
    assert by_user["session_id"] == first and by_user["message_count"] == 4

    # list with filters and paging
    listed = api.list(limit=5)
    assert listed["count"] == 12 and len(listed["sessions"]) == 5 and listed["next_offset"] == 5
    assert listed["sessions"][0]["session_id"] == first  # most recent activity first
    support = api.list(persona="technical_support")
    assert {s["session_id"] for s in support["sessions"]} == {sids[i] for i in (0, 3, 6, 9)}
    mine = api.list(user_id="user 4")
    assert [s["session_id"] for s in mine["sessions"]] == [sids[4]]
    assert api.list(user_id="user 4", persona="technical_support")["count"] == 0

    # rename
    renamed = c.patch(f"/api/sessions/{sids[1]}", json={"display_name": "Renamed"}).get_json()
    assert renamed["display_name"] == "Renamed"
    assert c.get(f"/api/sessions/{sids[1]}").get_json()["display_name"] == "Renamed"

    # archive hides it from the default list and keeps it forever; unarchive restores it
    archived = c.patch(f"/api/sessions/{sids[2]}", json={"archived": True}).get_json()
    assert archived["archived"] is True and archived["expires_at"] is None
    assert rc.ttl(session_key(sids[2])) == -1 and rc.ttl(messages_key(sids[2])) == -1
    assert sids[2] not in {s["session_id"] for s in api.list(limit=100)["sessions"]}
    assert [s["session_id"] for s in api.list(archived="true")["sessions"]] == [sids[2]]
    restored = c.patch(f"/api/sessions/{sids[2]}", json={"archived": False}).get_json()
    assert restored["archived"] is False and restored["expires_at"]
    assert rc.ttl(session_key(sids[2])) > 0
    assert api.list(archived="true")["count"] == 0
    assert api.list(limit=100)["count"] == 12

    # clear by session id and by user id
    cleared = c.delete(f"/api/session/{first}/clear")
    assert cleared.status_code == 200 and cleared.get_json()["session_id"] == first
    assert c.get(f"/api/session/{first}/history").get_json()["messages"] == []
    assert not rc.exists(messages_key(first))
    assert c.delete("/api/session/user 5/clear").get_json()["session_id"] == sids[5]
    assert c.get(f"/api/sessions/{sids[5]}").get_json()["message_count"] == 0

    # delete removes the keys and every index entry
    assert c.delete(f"/api/sessions/{sids[3]}").status_code == 200
    assert c.get(f"/api/sessions/{sids[3]}").status_code == 404
    assert not rc.exists(session_key(sids[3]), messages_key(sids[3]))
    shard = shard_of_session(sids[3])
    for archived in (False, True):
        for user, persona in ((None, None), ("user 3", None), (None, "technical_support")):
            assert rc.zscore(index_key(archived, user, persona, shard), sids[3]) is None
    assert rc.hget(summaries_key(shard), sids[3]) is None
    assert api.list(limit=100)["count"] == 11
    assert c.delete(f"/api/sessions/{sids[3]}").status_code == 404


def test_sessions_expire_on_the_cluster(
    cluster: RedisCluster, rc: redis.cluster.RedisCluster, cluster_app: Callable[..., Flask]
) -> None:
    app = cluster_app(cluster, SESSION_TIMEOUT=1)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    api = Api(client)
    sids = [api.create(user_id=f"brief {i}")["session_id"] for i in range(12)]
    for sid in sids:
        api.send(sid, "soon gone")
    assert len({node_of(rc, session_key(sid)) for sid in sids}) > 1
    assert api.list()["count"] == 12

    deadline = time.monotonic() + 5
    while rc.exists(*[session_key(s) for s in sids]) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not any(rc.exists(session_key(s), messages_key(s)) for s in sids)
    purged = app.test_cli_runner().invoke(args=["sessions", "purge-expired"])
    assert purged.output == "Removed 12 expired session(s) from the indexes.\n"
    assert api.list() == {"sessions": [], "count": 0, "limit": 50, "offset": 0, "next_offset": None}
    assert api.list(user_id="brief 0")["count"] == 0
    assert client.get(f"/api/sessions/{sids[0]}").status_code == 404
    assert client.get("/api/session/brief 0/history").status_code == 404
    assert client.post(f"/api/sessions/{sids[0]}/messages", json={"content": "late"}).status_code == 404
    assert not rc.exists(session_key(sids[0]), messages_key(sids[0]))  # a late write re-creates nothing


def test_search_is_kept_by_the_writes_on_the_cluster(api: Api, rc: redis.cluster.RedisCluster) -> None:
    sids = {}
    for i in range(12):
        sid = api.create(user_id=f"searcher {i}", display_name=f"Notes {i}")["session_id"]
        api.send(sid, f"the quokka number {i} smiles")
        sids[f"searcher {i}"] = sid
    assert len({node_of(rc, session_key(s)) for s in sids.values()}) > 1
    for sid in sids.values():  # the session's words were indexed on its own master, by its write
        words_key = shard_prefix(shard_of_session(sid)) + f"x:b:{sid}"
        assert rc.exists(words_key) and node_of(rc, words_key) == node_of(rc, session_key(sid))

    everyone = api.client.get("/api/search", query_string={"q": "quokka smiles"}).get_json()
    one = api.client.get("/api/search", query_string={"q": '"number 3"', "user_id": "searcher 3"}).get_json()
    assert everyone["count"] == 12 and set(r["session_id"] for r in everyone["results"]) == set(sids.values())
    assert [r["session_id"] for r in one["results"]] == [sids["searcher 3"]]
    assert one["results"][0]["snippets"][0]["highlights"] == [[11, 19]]  # "the quokka number 3 smiles"

    api.client.delete(f"/api/sessions/{sids['searcher 3']}")
    api.client.delete(f"/api/session/{sids['searcher 4']}/clear")
    after = api.client.get("/api/search", query_string={"q": "quokka"}).get_json()
    assert after["count"] == 11  # the cleared one by its title (its first message), without snippets
    assert [r["snippets"] for r in after["results"] if r["session_id"] == sids["searcher 4"]] == [[]]
    assert api.client.get("/api/search", query_string={"q": "notes 4"}).get_json()["count"] == 1


def test_scripts_reload_on_every_master_after_a_flush(
    api: Api, cluster: RedisCluster, rc: redis.cluster.RedisCluster
) -> None:
    sids = [api.create(user_id=f"reload {i}")["session_id"] for i in range(12)]
    assert len({node_of(rc, session_key(s)) for s in sids}) > 1
    flush_scripts(cluster)

    for sid in sids:
        api.send(sid, "after the flush")

    assert all(api.client.get(f"/api/sessions/{s}").get_json()["message_count"] == 2 for s in sids)
    assert api.list()["count"] == 12


def command_calls(cluster: RedisCluster) -> dict[str, int]:
    """Commands served so far, summed over every master (INFO commandstats)."""
    totals: dict[str, int] = {}
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            for name, stats in c.info("commandstats").items():
                command = name.removeprefix("cmdstat_")
                totals[command] = totals.get(command, 0) + int(stats["calls"])
    return totals


def test_requests_route_scripts_by_key_without_asking_the_server(
    api: Api, cluster: RedisCluster, rc: redis.cluster.RedisCluster
) -> None:
    sid = api.create(user_id="routing")["session_id"]
    api.send(sid, "warm up")  # scripts loaded, connections open
    before = command_calls(cluster)

    api.send(sid, "counted")
    api.client.get(f"/api/sessions/{sid}/messages")

    after = command_calls(cluster)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    # one append (the message and the offline reply together, with its index bumps inside the
    # script) and one read, each one EVALSHA on the session's master
    assert delta.get("evalsha") == 2, delta
    # shard, user, persona and user+persona indexes; and the new word "counted" joins the
    # user's search dictionary (inside the same script: search costs no round trip)
    assert delta.get("zadd") == 4 + 1, delta
    assert not any(k.startswith(("command", "script", "cluster")) for k in delta), delta


def test_600_users_chatting_spread_over_the_masters(
    cluster: RedisCluster, rc: redis.cluster.RedisCluster, cluster_app: Callable[..., Flask]
) -> None:
    """No master serves more than 40% of the commands (an even spread is 33%)."""
    app = cluster_app(cluster)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    api = Api(client)
    users = [f"chatter {i}" for i in range(600)]
    sids = [api.create(user_id=user)["session_id"] for user in users]
    for node in cluster.nodes:
        with node.client() as c:
            c.config_resetstat()

    for user, sid in zip(users, sids, strict=True):
        api.send(sid, "hello")
        client.get(f"/api/session/{user}/history")
        api.list(user_id=user)
        client.patch(f"/api/sessions/{sid}", json={"display_name": f"{user}'s chat"})

    served = {}
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            served[node.port] = sum(int(s["calls"]) for s in c.info("commandstats").values())
    shares = {port: calls / sum(served.values()) for port, calls in served.items()}
    print("commands per master:", {port: f"{share:.1%}" for port, share in shares.items()})
    assert max(shares.values()) <= 0.40, shares
    assert len({shard_of_session(sid) for sid in sids}) == SHARDS


def test_pin_search_and_bulk_actions_on_the_cluster(api: Api, rc: redis.cluster.RedisCluster) -> None:
    c = api.client
    # users whose shards sit on different masters, so one bulk request spans them
    users = [f"user {i}" for i in range(12)]
    sids = [api.create(user_id=user, display_name=f"garden {i}")["session_id"] for i, user in enumerate(users)]
    assert len({node_of(rc, session_key(sid)) for sid in sids}) == 3
    api.send(sids[0], "What grows in shade?")
    assert c.get(f"/api/sessions/{sids[0]}").get_json()["title"] == "What grows in shade?"

    pinned = c.patch(f"/api/sessions/{sids[5]}", json={"pinned": True}).get_json()
    assert pinned["pinned"] is True and rc.pttl(session_key(sids[5])) == -1
    assert api.list()["sessions"][0]["session_id"] == sids[5]
    assert [s["session_id"] for s in api.list(user_id=users[0], q="SHADE")["sessions"]] == [sids[0]]
    everyone = api.list(q="garden", limit=5)
    assert everyone["count"] == 12 and everyone["sessions"][0]["session_id"] == sids[5]

    answer = c.post("/api/sessions/bulk", json={"action": "archive", "session_ids": sids[:6]}).get_json()
    assert answer["done"] == 6
    assert api.list(archived="true")["count"] == 6 and api.list()["count"] == 6
    for sid in sids[:6]:
        shard = shard_of_session(sid)
        assert rc.zscore(index_key(True, shard=shard), sid) is not None
        assert rc.zscore(index_key(False, shard=shard), sid) is None
    answer = c.post("/api/sessions/bulk", json={"action": "delete", "session_ids": sids[::2]}).get_json()
    assert [r["status"] for r in answer["results"]] == [200] * 6
    assert api.list()["count"] + api.list(archived="true")["count"] == 6
    assert not any(rc.exists(session_key(sid)) for sid in sids[::2])
