"""All or nothing: with Redis out of memory (maxmemory, noeviction), a write answered 5xx left
nothing behind and a 2xx stored everything, with every index consistent (real redis-server)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from chatapp.storage.keys import SHARDS, shard_prefix, summaries_key
from tests.helpers import OPERATOR_KEY
from tests.servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def full_redis(tmp_path):
    with RedisServer(tmp_path / "redis", ["--maxmemory-policy", "noeviction"]) as server:
        yield server


def stored_state(client) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Every session hash and message list in layout v2, by session id."""
    sessions, messages = {}, {}
    for shard in range(SHARDS):
        prefix = shard_prefix(shard)
        for key in client.scan_iter(f"{prefix}s:*"):
            sid = key.removeprefix(f"{prefix}s:")
            sessions[sid] = client.hgetall(key)
            messages[sid] = [json.loads(m) for m in client.lrange(f"{prefix}m:{sid}", 0, -1)]
    return sessions, messages


def assert_indexes_consistent(client, sessions: dict[str, dict]) -> None:
    """Every index entry and summary names a stored session, and every session is indexed where it belongs."""
    for shard in range(SHARDS):
        prefix = shard_prefix(shard)
        summaries = client.hgetall(summaries_key(shard))
        mine = {sid for sid in sessions if client.exists(f"{prefix}s:{sid}")}
        assert set(summaries) == mine, f"shard {shard}: summaries and sessions differ"
        for sid, summary in summaries.items():
            assert json.loads(summary)["message_count"] == int(sessions[sid]["message_count"])
        for key in itertools.chain(client.scan_iter(f"{prefix}live*"), client.scan_iter(f"{prefix}arch*")):
            members = set(client.zrange(key, 0, -1))
            assert members <= mine, f"{key} names sessions that are not stored: {members - mine}"
        for sid in mine:
            fields = sessions[sid]
            state = "arch" if fields["archived"] == "1" else "live"
            for scope in ("", f":u:{fields['user_id']}", f":p:{fields['persona']}"):
                assert client.zscore(f"{prefix}{state}{scope}", sid) is not None, (sid, scope)


def test_writes_refused_for_memory_leave_nothing_and_accepted_ones_are_whole(full_redis, make_app):
    app = make_app(REDIS_URL=full_redis.url, RATELIMIT_ENABLED=False)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    direct = full_redis.client(decode_responses=True)
    rng = random.Random(7)
    users = [f"user {i}" for i in range(30)]
    live = [client.post("/api/session/create", json={"user_id": u}).get_json()["session_id"] for u in users]
    used = direct.info("memory")["used_memory"]
    direct.config_set("maxmemory", used + 1_500_000)  # a post is kept twice: the message and its event
    accepted: dict[str, list] = {"create": [], "post": [], "rename": []}
    refused: dict[str, list] = {"create": [], "post": [], "rename": []}
    statuses = []
    try:
        for n in range(1500):
            token = f"tok{n:05d}"
            action = rng.choice(["create", "post", "post", "post", "rename", "archive", "delete"])
            sid = rng.choice(live)
            if action == "create":
                r = client.post("/api/session/create", json={"user_id": rng.choice(users), "display_name": token})
                if r.status_code == 201:
                    live.append(r.get_json()["session_id"])
            elif action == "post":
                r = client.post(f"/api/sessions/{sid}/messages", json={"content": token + " " + "x" * 3000})
            elif action == "rename":
                r = client.patch(f"/api/sessions/{sid}", json={"display_name": token})
            elif action == "archive":
                r = client.patch(f"/api/sessions/{sid}", json={"archived": rng.random() < 0.5})
            else:
                r = client.delete(f"/api/sessions/{sid}")
                if r.status_code == 200 and len(live) > 5:
                    live.remove(sid)
            statuses.append(r.status_code)
            assert r.status_code < 500 or r.status_code == 503, r.get_data(as_text=True)
            if action in accepted and r.status_code < 300:
                accepted[action].append((sid, token))
            elif action in refused and r.status_code == 503:
                refused[action].append((sid, token))
    finally:
        direct.config_set("maxmemory", 0)

    print({status: statuses.count(status) for status in set(statuses)}, {k: len(v) for k, v in refused.items()})
    assert statuses.count(503) > 50 and sum(s < 300 for s in statuses) > 300, "the run must mix both outcomes"
    sessions, messages = stored_state(direct)
    names = {fields.get("display_name") for fields in sessions.values()}
    contents = {m["content"].split(" ")[0] for ms in messages.values() for m in ms}
    for _, token in refused["create"] + refused["rename"]:
        assert token not in names
    for _, token in refused["post"]:
        assert token not in contents
    for sid, token in accepted["post"]:
        if sid in messages:  # unless deleted later
            assert token in {m["content"].split(" ")[0] for m in messages[sid]}
    for sid, ms in messages.items():
        assert int(sessions[sid]["message_count"]) == len(ms)
        assert len(ms) % 2 == 0, "each post stores the message and its reply together"
    assert_indexes_consistent(direct, sessions)
    direct.close()
