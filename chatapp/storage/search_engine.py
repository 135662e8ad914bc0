"""Which search engine answers searches, as /health reports it to operators.

This version has one: ``built-in``, the app's own index kept by the write scripts
(chatapp/storage/search.py), which runs on any Redis 7 and on a Redis Cluster. The Redis
Query Engine (FT.*, Redis Stack and Redis 8) is not used yet: README.md (Search) says why and
what it would take; ``redis-query-engine`` is reserved for it.
"""

from __future__ import annotations

from flask import Flask

BUILT_IN = "built-in"
QUERY_ENGINE = "redis-query-engine"


def engine_of(app: Flask) -> str:
    """The engine this app's searches use."""
    return BUILT_IN
