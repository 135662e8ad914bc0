"""Replies as jobs and the live channel on a real three-master Redis Cluster.

A session's stream, running reply and text so far share its shard's hash tag, so each
script stays in one slot; a worker's reader makes one blocking XREAD per shard.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask

from chatapp.storage.keys import events_key, shard_of_session
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY, AppFactory
from tests.live_channel import Channel
from tests.test_cluster import rc  # noqa: F401 - the fixture (the cluster itself is conftest's)

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def app(cluster, rc, fake: FakeLLM, make_app: AppFactory) -> Flask:  # noqa: F811 - the imported fixtures
    fake.reset()
    return make_app(
        REDIS_URL=cluster.url,
        REDIS_CLUSTER=True,
        RATELIMIT_ENABLED=False,
        LLM_BASE_URL=fake.base_url,
        LLM_MODEL="fake-cluster-model",
        LLM_TIMEOUT=3,
        SSE_KEEPALIVE=0.2,
    )


def test_replies_stops_and_channels_across_shards_of_a_cluster(app: Flask, fake: FakeLLM, rc) -> None:  # noqa: F811
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sids = [
        client.post("/api/session/create", json={"user_id": f"user {n}"}).get_json()["session_id"] for n in range(8)
    ]
    assert len({shard_of_session(sid) for sid in sids}) >= 4  # several shards, so several masters
    assert len({rc.get_node_from_key(events_key(sid)).name for sid in sids}) >= 2  # streams on several masters
    channels = [Channel(client, sid) for sid in sids]

    for sid in sids:
        assert client.post(f"/api/sessions/{sid}/messages", json={"content": f"hi {sid[-4:]}"}).status_code == 201
    seen = {}
    for sid, channel in zip(sids, channels, strict=True):
        seen[sid] = channel.until("done")
        assert seen[sid][0][2]["content"] == f"hi {sid[-4:]}"
        assert seen[sid][-1][2]["assistant_message"]["content"] == fake.reply

    # One reply at a time, and Stop, on the cluster too.
    fake.reset("slow", pieces=["Slow", " and", " steady"], interval=0.01)
    sid, channel = sids[0], channels[0]
    started = client.post(
        f"/api/sessions/{sid}/messages", json={"content": "again"}, headers={"Prefer": "respond-async"}
    )
    assert started.status_code == 202
    channel.until("delta")
    assert client.post(f"/api/sessions/{sid}/messages", json={"content": "too"}).status_code == 409
    asked = time.monotonic()
    assert client.post(f"/api/sessions/{sid}/stop").status_code == 202
    done = channel.until("done")[-1][2]
    assert time.monotonic() - asked < 1 and done["stopped"] is True
    fake.release.set()

    # A late listener resumes by Last-Event-ID on the cluster.
    first_id = seen[sids[1]][0][0]
    later = Channel(client, sids[1], headers={"Last-Event-ID": first_id})
    assert later.until("done") == seen[sids[1]][1:]
    for each in [*channels, later]:
        each.close()
