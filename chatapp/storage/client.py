"""The app's Redis client, built by flask-redis from CHATAPP_REDIS_URL.

``memory://`` gives an in-process fakeredis server (with Lua) for development and fast
tests; ``CHATAPP_REDIS_CLUSTER=1`` connects to a Redis Cluster instead.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, cast

import fakeredis
import redis
from flask import Flask, current_app
from flask_redis import FlaskRedis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisError
from redis.retry import Retry

from chatapp.settings import MEMORY_URL
from chatapp.storage.commands import QUOTA_NAMES
from chatapp.storage.migrate import Migrator
from chatapp.storage.search_engine import engine_of
from chatapp.storage.sessions import SessionStore

log = logging.getLogger(__name__)

EXTENSION = "redis"  # flask-redis registers itself under this name


class EmbeddedRedis:
    """flask-redis provider: each app gets its own private fakeredis server."""

    @staticmethod
    def from_url(url: str, **kwargs: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), **kwargs)


def retry_policy() -> Retry:
    """Retry a dropped connection once, briefly, so an outage answers fast and heals by itself."""
    return Retry(ExponentialBackoff(cap=0.25, base=0.02), retries=1)


def timeouts(app: Flask, quick: bool = False) -> dict[str, Any]:
    """Time-outs for every connection to Redis (the store's and the rate limiter's).

    A Redis that hangs (stopped, or its host unreachable) must cost a request seconds, not
    minutes: each command waits at most CHATAPP_REDIS_TIMEOUT, a connection half of it, and a
    lost connection is retried once. No request-path script runs anywhere near it (each is
    O(log N + page)). redis-py's CLIENT SETINFO handshake is left out: it is two more waits
    on every reconnect, and names nothing an operator needs.

    ``quick``: a third of that and no retry, for a client that can do without an answer (the
    rate limiter steps aside when Redis does not answer, and the store then answers 503).
    """
    seconds = float(app.config["REDIS_TIMEOUT"])
    if quick:
        seconds = max(0.2, seconds / 3)
    return {
        "socket_timeout": seconds,
        "socket_connect_timeout": seconds if quick else max(0.5, seconds / 2),
        "retry": Retry(NoBackoff(), 0) if quick else retry_policy(),
        "driver_info": None,  # no CLIENT SETINFO on connect
    }


def pool_options(app: Flask, quick: bool = False) -> dict[str, Any]:
    """A bounded pool that makes a request wait for a free connection instead of failing.

    Under gevent a worker serves thousands of connections at once; an unbounded pool would
    open a Redis connection for each request in flight, and a bounded plain one fails the
    request past its size (MaxConnectionsError). With CHATAPP_REDIS_MAX_CONNECTIONS per
    process, requests share connections: each holds one for a command and its answer (no
    request keeps one while it streams; under gevent, though, until its worker's loop comes back
    to it, which on a busy CPU takes a while: hence 128), and one that gets none within a
    command's time-out (``timeouts``) fails like any other Redis error, with a 503. ``quick``:
    the rate limiter's own smaller pool.
    """
    size = int(app.config["REDIS_MAX_CONNECTIONS"])
    return {
        "connection_pool_class": redis.BlockingConnectionPool,
        "max_connections": max(2, size // 4) if quick else size,
        "timeout": timeouts(app, quick)["socket_timeout"],
    }


def _connection_options(app: Flask) -> dict[str, Any]:
    # Fail fast while Redis is down, and heal by itself when it returns: a command on a dead
    # pooled connection is retried once on a new one. (No idle health-check PING: against a
    # hung Redis it would wait a time-out of its own before every command.)
    options: dict[str, Any] = {"decode_responses": True, **timeouts(app), **pool_options(app)}
    options.update(app.config.get("REDIS_OPTIONS") or {})
    return options


class PooledRedis:
    """flask-redis provider: redis-py's client on a pool of the class given (Redis.from_url
    always builds a plain ConnectionPool)."""

    @staticmethod
    def from_url(url: str, connection_pool_class: type[redis.ConnectionPool], **kwargs: Any) -> redis.Redis:
        client = redis.Redis(connection_pool=connection_pool_class.from_url(url, **kwargs))
        client.auto_close_connection_pool = True  # close_store closes the pool with the client
        return client


def limiter_options(app: Flask, uri: str) -> dict[str, Any]:
    """Flask-Limiter's storage options for ``uri``: its own small bounded pool, quick time-outs.

    The rate limiter steps aside when Redis does not answer (RATELIMIT_SWALLOW_ERRORS) and the
    store then answers 503: it gives up on a hung Redis, or on a full pool, at a third of the
    store's time-out and without a retry, so the two together stay within a few seconds. On a
    Cluster (limits builds RedisCluster from the nodes, with plain pools) the bound is the
    per-node ``max_connections``, past which the limiter steps aside at once.
    """
    options = {**timeouts(app, quick=True), **pool_options(app, quick=True)}
    pool_class = options.pop("connection_pool_class")
    wait = options.pop("timeout")
    scheme, _, rest = uri.partition("://")
    if scheme not in ("redis", "rediss", "redis+unix"):
        return options
    url = f"unix://{rest}" if scheme == "redis+unix" else uri
    return {"connection_pool": pool_class.from_url(url, timeout=wait, **options)}


def init_app(app: Flask) -> None:
    """Build this app's client; flask-redis keeps one client per extension object."""
    url = app.config["REDIS_URL"]
    if url.startswith(MEMORY_URL):
        ext = FlaskRedis.from_custom_provider(EmbeddedRedis, decode_responses=True)
    elif app.config.get("REDIS_CLUSTER"):
        ext = FlaskRedis.from_custom_provider(RedisCluster, **_connection_options(app))
    else:
        ext = FlaskRedis.from_custom_provider(PooledRedis, **_connection_options(app))
    ext.init_app(app)  # registers itself as app.extensions["redis"]
    if not url.startswith(MEMORY_URL):
        _note_pending_migration_once(app)
    # At start-up, so that a forced engine the server lacks stops the app here; while Redis
    # does not answer, the first request that reaches it chooses.
    with contextlib.suppress(RedisError):
        engine_of(app)


def _note_pending_migration_once(app: Flask) -> None:
    """Log once, at the first request, when layout-v1 data waits for ``flask store migrate``.

    The app serves meanwhile (v1 sessions stay invisible until migrated); a Redis that does
    not answer is the request's problem, not this note's."""
    checked = False

    def check() -> None:
        nonlocal checked
        if checked:
            return
        checked = True
        try:
            pending = Migrator(get_redis(app), app.config["SESSION_TIMEOUT"]).pending()
        except RedisError:
            return
        if pending:
            log.warning(
                "Sessions in storage layout v1 are waiting to be copied: run `flask --app wsgi store migrate`. "
                "Until then they do not appear."
            )

    app.before_request(check)


def get_redis(app: Flask | None = None) -> redis.Redis:
    """The app's Redis client (a FlaskRedis proxy to redis-py)."""
    return cast(redis.Redis, (app or current_app).extensions[EXTENSION])


def get_store(app: Flask | None = None) -> SessionStore:
    """The session store of the app (the current one by default)."""
    app = app or current_app
    quotas = {name: app.config[f"QUOTA_{name.upper()}"] for name in QUOTA_NAMES}
    return SessionStore(get_redis(app), app.config["SESSION_TIMEOUT"], quotas, engine_of(app))


def close_store(app: Flask) -> None:
    """Close the app's connections (tests build many apps in one process)."""
    app.extensions[EXTENSION].close()


def store_kind(app: Flask) -> str:
    if app.config["REDIS_URL"].startswith(MEMORY_URL):
        return "memory"
    return "cluster" if app.config.get("REDIS_CLUSTER") else "redis"
