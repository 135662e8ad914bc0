"""Key names, session ids and time stamps of layout version 1 (see migrations_none/README.md).

- ``chatapp:v1:session:{<sid>}``           hash: the session's fields
- ``chatapp:v1:session:{<sid>}:messages``  list: one JSON document per message, oldest first
- ``chatapp:v1:{idx}:active``              zset: live, unarchived sessions scored by expiry (ms)
- ``chatapp:v1:{idx}:archived``            zset: archived sessions scored by last activity (ms)
- ``chatapp:v1:{idx}:user:<user_id>``      zset: a user's sessions (membership, scored by creation)
- ``chatapp:v1:{idx}:persona:<persona>``   zset: a persona's sessions (membership)

The two keys of a session share the hash tag ``{<sid>}``, so each per-session change is one
atomic script on a single server and on Redis Cluster alike. Every index shares ``{idx}``.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime

PREFIX = "chatapp:v1"
INDEX_ACTIVE = f"{PREFIX}:{{idx}}:active"
INDEX_ARCHIVED = f"{PREFIX}:{{idx}}:archived"
SESSION_ID_PATTERN = re.compile(r"^session_[A-Za-z0-9_-]{1,200}$")


def session_key(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}"


def messages_key(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:messages"


def user_index_key(user_id: str) -> str:
    return f"{PREFIX}:{{idx}}:user:{user_id}"


def persona_index_key(persona: str) -> str:
    return f"{PREFIX}:{{idx}}:persona:{persona}"


def is_session_id(value: str) -> bool:
    return SESSION_ID_PATTERN.match(value) is not None


def new_session_id(user_id: str) -> str:
    """The guide's ``session_<user>_<seconds>`` made URL-safe and unique within a second."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", user_id).strip("-")[:32] or "user"
    return f"session_{slug}_{int(time.time())}_{secrets.token_hex(5)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    """ISO 8601, UTC, explicit offset, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
