"""Which search engine answers: the app's own index (``built-in``, on any Redis 7) or the
Redis Query Engine (``redis-query-engine``: FT.*, in Redis Stack and Redis 8).

Chosen once per app, at the first search or /health after start-up, from what the server
says it has (MODULE LIST); CHATAPP_SEARCH_ENGINE pins one (``built-in``, or ``auto``).
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask
from redis.exceptions import RedisError

from chatapp.settings import MEMORY_URL

BUILT_IN = "built-in"
QUERY_ENGINE = "redis-query-engine"
EXTENSION = "chatapp.search_engine"
QUERY_ENGINE_MODULES = frozenset({"search", "searchlight", "ft"})  # what MODULE LIST calls it


def has_query_engine(client: Any) -> bool:
    """Does this server have FT.* (a search module loaded, or built in as in Redis 8)?"""
    try:
        modules = cast(list[dict[str, Any]], client.module_list())
    except RedisError:
        modules = []
    if any(str(m.get("name", "")).lower() in QUERY_ENGINE_MODULES for m in modules):
        return True
    try:
        client.execute_command("FT._LIST")
    except RedisError:
        return False
    return True


def engine_of(app: Flask) -> str:
    """The engine this app's searches use.

    The query engine is detected, but this version answers every search with the built-in
    index (its FT.* engine is not done: see README, Search); a server that has FT.* is
    reported as such by ``available`` for operators."""
    return cast(str, app.extensions.setdefault(EXTENSION, BUILT_IN))


def available(app: Flask, client: Any) -> str:
    """What the server offers: ``redis-query-engine`` or ``built-in`` (memory:// has no FT.*)."""
    if app.config["REDIS_URL"].startswith(MEMORY_URL):
        return BUILT_IN
    return QUERY_ENGINE if has_query_engine(client) else BUILT_IN
