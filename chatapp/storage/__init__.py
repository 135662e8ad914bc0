"""Storage: the only package that speaks Redis.

- ``client``: the app's Redis client (flask-redis), the store for the current app
- ``keys``: key names, session ids, time stamps (the layout, versioned by prefix)
- ``lua``: the scripts in ``scripts/*.lua``, named by SHA
- ``commands``: one round trip per request, NOSCRIPT reload, cluster routing
- ``sessions``: sessions and their messages; ``indexes``: listings and index upkeep
- ``records``: Redis hashes and JSON turned into the app's dicts
- ``replies``: a reply's claim, pieces, stop and end; ``live``: reading a session's events
- ``shares``: share links to a session (snapshot or live), expiring in Redis
- ``transfer``: export (sessions and messages as stored) and import (one conversation per step)

Callers catch ``StoreUnavailable`` for any Redis failure, without importing redis.
"""

from __future__ import annotations

from redis.exceptions import RedisError as StoreUnavailable

from chatapp.storage.client import close_store, get_redis, get_store, init_app, limiter_options, store_kind
from chatapp.storage.commands import QUOTA_NAMES, HistoryChanged, QuotaExceeded, ReplyRunning
from chatapp.storage.keys import is_session_id
from chatapp.storage.records import Message, Session, make_message
from chatapp.storage.sessions import SessionStore
from chatapp.storage.transfer import ImportedSession

__all__ = [
    "HistoryChanged",
    "ImportedSession",
    "Message",
    "QUOTA_NAMES",
    "QuotaExceeded",
    "ReplyRunning",
    "Session",
    "SessionStore",
    "StoreUnavailable",
    "close_store",
    "get_redis",
    "get_store",
    "init_app",
    "is_session_id",
    "limiter_options",
    "make_message",
    "store_kind",
]
