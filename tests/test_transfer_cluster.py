"""Export and import on a real three-master Redis Cluster: each imported conversation is one script in
its user's slot, users spread over the masters, and a bad file leaves every master as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis.cluster
from flask.testing import FlaskClient

from chatapp.storage.keys import messages_key, session_key
from tests.helpers import OPERATOR_KEY, AppFactory
from tests.servers import RedisCluster
from tests.transfer_helpers import CHATGPT, OPEN_WEBUI, export_json, key_dump, post_import, without_ids

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def rc(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    with cluster.client(decode_responses=True) as client:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
        yield client


@pytest.fixture
def client(cluster: RedisCluster, rc: redis.cluster.RedisCluster, make_app: AppFactory) -> FlaskClient:
    app = make_app(REDIS_URL=cluster.url, REDIS_CLUSTER=True, RATELIMIT_ENABLED=False)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


def cluster_dump(rc: redis.cluster.RedisCluster) -> dict:
    """Every master's keys and values."""
    dumps = {}
    for node in rc.get_primaries():
        dumps[node.name] = key_dump(rc.get_redis_connection(node))
    return dumps


def test_import_and_export_on_a_cluster(client, rc):
    users = [f"user {i}" for i in range(6)]
    imported = {}
    for user in users:
        response = post_import(client, CHATGPT.read_bytes(), user_id=user)
        assert response.status_code == 200, response.get_json()
        imported[user] = response.get_json()["sessions"]

    sids = [s["session_id"] for user in users for s in imported[user]]
    homes = {rc.get_node_from_key(session_key(sid)).name for sid in sids}
    assert len(homes) > 1  # users in several shards: the imports ran on more than one master
    for sid in sids:
        assert rc.get_node_from_key(session_key(sid)).name == rc.get_node_from_key(messages_key(sid)).name
    archived = client.get("/api/sessions", query_string={"archived": "true", "limit": 50}).get_json()
    assert archived["count"] == 12

    everything = export_json(client)
    assert len(everything["sessions"]) == 12
    again = post_import(client, json.dumps(everything).encode(), user_id="copy").get_json()
    copied = export_json(client, user_id="copy")
    assert again["imported"] == 12
    assert sorted(json.dumps(s["messages"]) for s in without_ids(copied)["sessions"]) == sorted(
        json.dumps(s["messages"]) for s in without_ids(everything)["sessions"]
    )


def test_a_bad_file_leaves_every_master_as_it_was(client, rc):
    post_import(client, OPEN_WEBUI.read_bytes(), user_id="there before")
    before = cluster_dump(rc)
    good = json.loads(CHATGPT.read_text())[0]
    cycle = {"title": "Loop", "current_node": "a", "mapping": {"a": {"parent": "b"}, "b": {"parent": "a"}}}

    for data in (json.dumps([good, cycle]).encode(), CHATGPT.read_bytes()[:4000], b"[" * 10_000 + b"]" * 10_000):
        response = post_import(client, data, user_id="importer")
        assert 400 <= response.status_code < 500
    assert cluster_dump(rc) == before
