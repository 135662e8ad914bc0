"""Shared fixtures: a real redis-server per test session, apps on it (closed after each test), API callers.

Helpers that are not fixtures live in tests/helpers.py.

Markers mean what they say: every test that needs a redis-server binary is marked `redis`, so
`pytest -m "not redis"` runs everything else on a machine without one. Tests that use the
redis_server fixture (directly or through redis_db, app, client, api, the live servers) and
cluster tests get the mark here; a test or module that starts its own RedisServer without that
fixture carries the mark itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY, Api, AppFactory
from tests.servers import RedisCluster, RedisServer, redis_stack_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `redis` what needs a redis-server binary: the redis_server or redis_stack fixture
    anywhere in a test's fixture closure (item.fixturenames is transitive), or a Redis Cluster."""
    for item in items:
        needs = {"redis_server", "redis_stack"} & set(getattr(item, "fixturenames", ()))
        if needs or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run, on a free port, in a temp dir."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis Stack server (with the Redis Query Engine) for the whole run, started when first asked for."""
    with redis_stack_server(tmp_path_factory.mktemp("redis-stack")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real three-master Redis Cluster for the module's tests (mark them ``cluster``)."""
    with RedisCluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A direct client on the test server, emptied before each test (it is ours alone)."""
    with redis_server.client(decode_responses=True) as client:
        client.flushall()
        yield client


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    """Build apps in a test: make_app(**config) with the test settings, make_app.plain(config) without;
    every app built is closed after the test, whether it passed or not."""
    with AppFactory() as factory:
        yield factory


@pytest.fixture
def app(redis_server: RedisServer, redis_db: redis.Redis, make_app: AppFactory) -> Flask:
    """The app on the real test redis-server."""
    return make_app(REDIS_URL=redis_server.url)


@pytest.fixture
def memory_app(make_app: AppFactory) -> Flask:
    """The app on its own embedded fakeredis server (fast, no binary needed)."""
    return make_app(REDIS_URL="memory://")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An operator: the guide's API examples, sent with an API key."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    """A fake OpenAI-compatible model server (tests/fake_llm.py), one per test module."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLM) -> FakeLLM:
    """The module's fake model, back to its normal behaviour for this test."""
    return fake.reset()
