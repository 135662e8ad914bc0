"""Which engine keeps the search index and answers searches, chosen once per app at start-up.

- ``built-in``: the app's own index, kept by the write scripts (scripts/search_index.lua),
  on any Redis 7 and on a Redis Cluster.
- ``redis-query-engine``: the Redis Query Engine (``FT.*``: Redis Stack, Redis 8 with its
  modules), when a single server has it: the writes keep one document per session title and
  per block of messages (scripts/search_index_ft.lua) and the engine indexes them.

``CHATAPP_SEARCH_ENGINE`` is ``auto`` (the Query Engine where the server has it, on a single
server; the built-in one otherwise), ``built-in`` or ``redis-query-engine`` (refused at
start-up by a server without it). The scripts of the two engines write different keys, so
every process on one Redis must use the same engine: ``auto`` sees the same server in each.
Moving data from one engine to the other takes ``flask --app wsgi search reindex``.
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from redis.exceptions import ResponseError

from chatapp.settings import SEARCH_ENGINES
from chatapp.storage.keys import SHARDS, shard_prefix
from chatapp.storage.lua import BUILT_IN, QUERY_ENGINE

ENGINES = (BUILT_IN, QUERY_ENGINE)
INDEX = "chatapp:v2:search"  # scripts/search_query_ft.lua names it too
EXTENSION = "chatapp.search_engine"


def has_query_engine(client: Any) -> bool:
    """Whether a single server has the Redis Query Engine (its ``search`` module)."""
    if getattr(client, "get_node_from_key", None) is not None:
        return False  # a Redis Cluster: each node's index holds only that node's keys
    try:
        modules = client.execute_command("MODULE", "LIST")
    except ResponseError:  # a server (or fakeredis) without modules
        return False
    names = {str(dict(_pairs(module)).get("name", "")).lower() for module in modules or ()}
    return "search" in names


def _pairs(module: Any) -> list[tuple[Any, Any]]:
    if isinstance(module, dict):
        return list(module.items())
    return [(module[i], module[i + 1]) for i in range(0, len(module) - 1, 2)]


def create_index(client: Any) -> None:
    """The Query Engine's index over every shard's search documents (idempotent).

    One TEXT field of folded words (the app folds case and accents itself, so the engine
    must not stem them or drop stop words), tags for the session, its user (the SHA-1 of the
    id) and shard, and ``k`` on the title's document. A document written while the index did
    not exist (after a FLUSHALL, say) is taken in when it is created."""
    prefixes = [shard_prefix(shard) + "x:q:" for shard in range(SHARDS)]
    schema = ["w", "TEXT", "NOSTEM", "u", "TAG", "h", "TAG"]
    # Only grouped by and read, never searched: kept with each document, not indexed.
    schema += ["s", "TAG", "CASESENSITIVE", "SORTABLE", "NOINDEX", "k", "NUMERIC", "SORTABLE", "NOINDEX"]
    try:
        client.execute_command(
            "FT.CREATE", INDEX, "ON", "HASH", "PREFIX", len(prefixes), *prefixes,
            "NOHL", "NOFIELDS", "STOPWORDS", 0, "SCHEMA", *schema,
        )  # fmt: skip
    except ResponseError as exc:
        if "already exists" not in str(exc).lower():
            raise
    # `p*` is a search as on the built-in engine (the Query Engine's default asks for 2 letters).
    client.execute_command("FT.CONFIG", "SET", "MINPREFIX", 1)


def choose(client: Any, wanted: str = "auto") -> str:
    """The engine for a server, given CHATAPP_SEARCH_ENGINE; the Query Engine's index is
    created when it is chosen."""
    if wanted not in SEARCH_ENGINES:
        raise ValueError(f"CHATAPP_SEARCH_ENGINE must be auto, {BUILT_IN} or {QUERY_ENGINE}, not {wanted!r}")
    if wanted == BUILT_IN:
        return BUILT_IN
    available = has_query_engine(client)
    if wanted == QUERY_ENGINE and not available:
        raise RuntimeError(f"CHATAPP_SEARCH_ENGINE={QUERY_ENGINE}, but this Redis has no Query Engine (FT.*)")
    if not available:
        return BUILT_IN
    create_index(client)
    return QUERY_ENGINE


def engine_of(app: Flask) -> str:
    """The engine this app's searches and writes use: chosen at its first use of Redis, then
    kept (a Redis that does not answer raises, and the next request asks again)."""
    engine = app.extensions.get(EXTENSION)
    if engine is None:
        from chatapp.storage.client import get_redis  # noqa: PLC0415 - client builds stores with this module

        engine = choose(get_redis(app), app.config.get("SEARCH_ENGINE") or "auto")
        app.extensions[EXTENSION] = engine
    return str(engine)


def is_missing_index(exc: redis.RedisError) -> bool:
    """The Query Engine's answer when the index is gone (FLUSHALL, FT.DROPINDEX)."""
    return "no such index" in str(exc).lower() or "unknown index name" in str(exc).lower()
