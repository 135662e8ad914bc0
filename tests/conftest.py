"""Shared fixtures: a real redis-server per test session, apps on it, and API helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from chatapp import create_app
from tests.helpers import OPERATOR_KEY, Api
from tests.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run, on a free port, in a temp dir."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A direct client on the test server, emptied before each test (it is ours alone)."""
    with redis_server.client(decode_responses=True) as client:
        client.flushall()
        yield client


def make_app(**config: Any) -> Flask:
    return create_app({"TESTING": True, "API_KEYS": OPERATOR_KEY, **config})


def close_app(app: Flask) -> None:
    app.extensions["redis"].close()


@pytest.fixture
def app(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[Flask]:
    """The app on the real test redis-server."""
    app = make_app(REDIS_URL=redis_server.url)
    yield app
    close_app(app)


@pytest.fixture
def memory_app() -> Iterator[Flask]:
    """The app on its own embedded fakeredis server (fast, no binary needed)."""
    app = make_app(REDIS_URL="memory://")
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An operator: the guide's API examples, sent with an API key."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)
