"""The app's Redis client, built by flask-redis from CHATAPP_REDIS_URL.

``memory://`` gives an in-process fakeredis server (with Lua) for development and
fast tests; ``CHATAPP_REDIS_CLUSTER=1`` connects to a Redis Cluster instead.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import redis
from flask import Flask, current_app
from flask_redis import FlaskRedis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from chatapp.settings import MEMORY_URL
from chatapp.storage import SessionStore


class EmbeddedRedis:
    """flask-redis provider: each app gets its own private fakeredis server."""

    @staticmethod
    def from_url(url: str, **kwargs: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), **kwargs)


def _connection_options(app: Flask) -> dict[str, Any]:
    # Fail fast while Redis is down, and heal by itself when it returns: pooled
    # connections are health-checked and a dropped connection is retried briefly.
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=0.25, base=0.02), retries=2),
    }
    options.update(app.config.get("REDIS_OPTIONS") or {})
    return options


def init_app(app: Flask) -> None:
    """Build this app's client; flask-redis keeps one client per extension object."""
    url = app.config["REDIS_URL"]
    if url.startswith(MEMORY_URL):
        ext = FlaskRedis.from_custom_provider(EmbeddedRedis, decode_responses=True)
    elif app.config.get("REDIS_CLUSTER"):
        ext = FlaskRedis.from_custom_provider(RedisCluster, **_connection_options(app))
    else:
        ext = FlaskRedis(**_connection_options(app))
    ext.init_app(app)  # registers itself as app.extensions["redis"]


def get_redis() -> redis.Redis:
    """The current app's Redis client (a FlaskRedis proxy to redis-py)."""
    return current_app.extensions["redis"]


def get_store() -> SessionStore:
    """The session store of the current app."""
    return SessionStore(get_redis(), current_app.config["SESSION_TIMEOUT"])


def store_kind(app: Flask) -> str:
    if app.config["REDIS_URL"].startswith(MEMORY_URL):
        return "memory"
    return "cluster" if app.config.get("REDIS_CLUSTER") else "redis"
