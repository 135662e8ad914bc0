"""Each process shares a bounded pool of Redis connections (CHATAPP_REDIS_MAX_CONNECTIONS).

A request waits for a free connection (redis-py's BlockingConnectionPool) instead of failing
with MaxConnectionsError, and one that gets none within the store's time-out answers 503 like
any other Redis failure. The rate limiter has its own smaller pool with its quicker time-outs.
Many requests at once through a real gunicorn: tests/test_gevent.py.
"""

from __future__ import annotations

import threading

import pytest
import redis
import redis.cluster

from chatapp.settings import ConfigError
from chatapp.storage import get_redis
from chatapp.web.limits import EXTENSION as LIMITER
from chatapp.web.limits import STORAGE_KEY_PREFIX
from tests.helpers import OPERATOR_KEY
from tests.servers import RedisCluster, RedisServer


def store_pool(app) -> redis.ConnectionPool:
    return get_redis(app).connection_pool


def limiter_client(app):
    return app.extensions[LIMITER].storage.storage


@pytest.mark.redis
def test_the_store_waits_for_one_of_128_connections_per_process_by_default(redis_server, make_app):
    pool = store_pool(make_app(REDIS_URL=redis_server.url))

    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == 128
    assert pool.timeout == 1.5  # CHATAPP_REDIS_TIMEOUT: as long as one command may take
    assert pool.connection_kwargs["socket_timeout"] == 1.5 and pool.connection_kwargs["retry"].get_retries() == 1


@pytest.mark.redis
def test_the_limiter_has_a_small_pool_of_its_own_with_its_quick_time_outs(redis_server, make_app):
    app = make_app(REDIS_URL=redis_server.url, REDIS_MAX_CONNECTIONS=20, REDIS_TIMEOUT=3)
    pool = limiter_client(app).connection_pool

    assert pool is not store_pool(app)
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (5, 1)
    assert pool.connection_kwargs["socket_timeout"] == 1 and pool.connection_kwargs["retry"].get_retries() == 0
    assert "decode_responses" not in pool.connection_kwargs  # limits reads bytes, as before


@pytest.mark.redis
def test_the_limiters_pool_reaches_a_storage_uri_of_its_own(redis_server, redis_db, make_app, tmp_path):
    """CHATAPP_RATELIMIT_STORAGE_URI may name another Redis: the pool must connect there."""
    with RedisServer(tmp_path / "limits") as other:
        app = make_app(REDIS_URL=redis_server.url, RATELIMIT_STORAGE_URI=other.url, SESSION_RATE_LIMIT="1 per minute")
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
        statuses = [client.post("/api/session/create", json={}).status_code for _ in range(2)]
        with other.client(decode_responses=True) as direct:
            counted_there = list(direct.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))

    assert statuses == [201, 429]
    assert counted_there and not list(redis_db.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))
    assert isinstance(limiter_client(app).connection_pool, redis.BlockingConnectionPool)


@pytest.mark.redis
def test_the_size_comes_from_the_environment(redis_server, make_app, monkeypatch):
    monkeypatch.setenv("CHATAPP_REDIS_MAX_CONNECTIONS", "7")
    app = make_app(REDIS_URL=redis_server.url)

    assert store_pool(app).max_connections == 7
    assert limiter_client(app).connection_pool.max_connections == 2  # never fewer than 2


@pytest.mark.parametrize("value", [0, -1, "many", 2.5, True])
def test_a_pool_size_that_is_not_a_positive_whole_number_stops_the_app(make_app, value):
    with pytest.raises(ConfigError, match="REDIS_MAX_CONNECTIONS must be a whole number >= 1"):
        make_app(REDIS_URL="memory://", REDIS_MAX_CONNECTIONS=value)


@pytest.mark.redis
def test_a_request_waits_for_a_connection_another_request_gives_back(redis_server, redis_db, make_app):
    app = make_app(REDIS_URL=redis_server.url, REDIS_MAX_CONNECTIONS=1, REDIS_TIMEOUT=5)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    pool = store_pool(app)
    held = pool.get_connection()
    giving_back = threading.Timer(0.2, pool.release, args=(held,))
    giving_back.start()
    try:
        waited = client.get("/api/sessions")
    finally:
        giving_back.join()

    assert waited.status_code == 200  # a plain pool would have failed at once (MaxConnectionsError)


@pytest.mark.redis
def test_a_request_that_gets_no_connection_in_time_answers_503_json(redis_server, redis_db, make_app):
    app = make_app(REDIS_URL=redis_server.url, REDIS_MAX_CONNECTIONS=1, REDIS_TIMEOUT=0.3)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    assert client.get("/api/sessions").status_code == 200
    pool = store_pool(app)
    held = pool.get_connection()  # the pool's only connection, taken by "another request"
    try:
        waited = client.get("/api/sessions")
    finally:
        pool.release(held)

    assert waited.status_code == 503 and waited.mimetype == "application/json"
    assert waited.get_json()["error"]["code"] == 503
    assert client.get("/api/sessions").status_code == 200  # given back: served again


@pytest.mark.cluster
@pytest.mark.redis
def test_on_a_cluster_each_node_pool_is_bounded_too(tmp_path, make_app):
    with RedisCluster(tmp_path) as cluster:
        app = make_app(REDIS_URL=cluster.url, REDIS_CLUSTER=True, REDIS_MAX_CONNECTIONS=6)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
        statuses = [client.post("/api/session/create", json={"user_id": f"u{n}"}).status_code for n in range(6)]
        store = get_redis(app)
        node_pools = [node.redis_connection.connection_pool for node in store.get_nodes()]
        limiter_nodes = limiter_client(app).get_nodes()
        limiter_pools = [node.redis_connection.connection_pool for node in limiter_nodes]

    assert statuses == [201] * 6  # the limiter counted them on the cluster too
    assert len(node_pools) == 3
    assert all(isinstance(pool, redis.BlockingConnectionPool) for pool in node_pools)
    assert {(pool.max_connections, pool.timeout) for pool in node_pools} == {(6, 1.5)}
    assert {pool.max_connections for pool in limiter_pools} == {2}
