"""Key names, shards, session ids and time stamps of layout version 2 (see migrations_none/README.md).

Every user belongs to one of ``SHARDS`` shards (a hash of the user id), and every key of
that user's sessions starts with the shard's prefix ``chatapp:v2:{<tag>}:``, so one script
changes a session and all its indexes atomically, on one server or a Redis Cluster. The
tags are chosen so the shards' slots are evenly spaced over the 16,384 slots: a cluster
spreads the shards over its masters as evenly as it spreads slots.

Within a shard (``P`` = the prefix):

- ``P s:<sid>`` hash, ``P m:<sid>`` list of JSON messages, ``P summaries`` hash sid -> JSON
- ``P live`` / ``P arch`` zsets: live sessions by expiry, archived ones by last activity,
  also per user (``:u:<uid>``), per persona (``:p:<persona>``) and both (``:up:<persona>:<uid>``)
- live: ``P e:<sid>`` the session's bounded stream of events, ``P r:<sid>`` its running
  reply (a hash with a lease) and ``P rt:<sid>`` that reply's text so far
- share links (chatapp/storage/shares.py), in the shard of the shared session: ``P sh:<token>``
  the link (a hash), ``P shm:<token>`` a snapshot's messages, ``P shid:<share id>`` -> token,
  ``P shs:<sid>`` and ``P shu:<uid>`` zsets of a session's and a user's links by expiry

A session id carries its shard (``session_<slug>_<seconds>_<2 hex shard><10 hex random>``);
ids from layout v1 (10 hex at the end) reach theirs through ``chatapp:v2:alias:{<old id>}``.
A share link's token and id name the shard too (their first character, in hex), so a link is
found, and written with the session's keys, without any lookup in another slot.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

PREFIX = "chatapp:v2"
SHARDS = 12  # 12 spreads evenly over clusters of 1, 2, 3, 4, 6 or 12 masters
SESSION_ID_PATTERN = re.compile(r"^session_[A-Za-z0-9-]{1,32}_[0-9]{1,12}_(?P<shard>[0-9a-f]{2})[0-9a-f]{10}$")
LEGACY_ID_PATTERN = re.compile(r"^session_[A-Za-z0-9_-]{1,200}$")
SHARE_TOKEN_PATTERN = re.compile(r"^(?P<shard>[0-9a-f])[A-Za-z0-9_-]{32}$")
SHARE_ID_PATTERN = re.compile(r"^sh(?P<shard>[0-9a-f])[0-9a-f]{16}$")


@cache
def shard_tag(shard: int) -> str:
    """A hash tag whose slot falls in the shard's even share of the slot space."""
    low = shard * REDIS_CLUSTER_HASH_SLOTS // SHARDS
    high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // SHARDS
    n = 0
    while not low <= key_slot(f"s{shard}-{n}".encode()) < high:
        n += 1
    return f"s{shard}-{n}"


def shard_prefix(shard: int) -> str:
    return f"{PREFIX}:{{{shard_tag(shard)}}}:"


def shard_of_user(user_id: str) -> int:
    digest = hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SHARDS


def shard_of_session(session_id: str) -> int | None:
    """The shard a (v2) session id names, or None for anything else."""
    found = SESSION_ID_PATTERN.match(session_id)
    if found is None:
        return None
    shard = int(found["shard"], 16)
    return shard if shard < SHARDS else None


def is_session_id(value: str) -> bool:
    """A session id of this layout, or one from layout v1 (resolved through its alias)."""
    return LEGACY_ID_PATTERN.match(value) is not None


def _shard(session_id: str, shard: int | None) -> int:
    if shard is None:
        shard = shard_of_session(session_id)
        if shard is None:
            raise ValueError(f"not a session id of this layout: {session_id!r}")
    return shard


def session_key(session_id: str, shard: int | None = None) -> str:
    """The session's hash (its shard read from the id unless given)."""
    return f"{shard_prefix(_shard(session_id, shard))}s:{session_id}"


def messages_key(session_id: str, shard: int | None = None) -> str:
    return f"{shard_prefix(_shard(session_id, shard))}m:{session_id}"


def events_key(session_id: str, shard: int | None = None) -> str:
    """The session's live stream of events (chatapp/storage/live.py)."""
    return f"{shard_prefix(_shard(session_id, shard))}e:{session_id}"


def reply_key(session_id: str, shard: int | None = None) -> str:
    """The session's running reply, while one runs (chatapp/storage/replies.py)."""
    return f"{shard_prefix(_shard(session_id, shard))}r:{session_id}"


def wake_key(shard: int, listener: str) -> str:
    """A process's wake-up stream in a shard: its blocked read of that shard's streams
    returns when something is added here (a new listener to include)."""
    return f"{shard_prefix(shard)}wake:{listener}"


def index_key(archived: bool, user_id: str | None = None, persona: str | None = None, shard: int = 0) -> str:
    """An index of one shard; a user's indexes are in the user's shard."""
    if user_id is not None:
        shard = shard_of_user(user_id)
    return shard_prefix(shard) + index_name(archived, user_id, persona)


def summaries_key(shard: int) -> str:
    return f"{shard_prefix(shard)}summaries"


def index_name(archived: bool, user_id: str | None = None, persona: str | None = None) -> str:
    """An index's name within its shard (after the prefix)."""
    state = "arch" if archived else "live"
    if user_id is not None and persona is not None:
        return f"{state}:up:{persona}:{user_id}"
    if user_id is not None:
        return f"{state}:u:{user_id}"
    if persona is not None:
        return f"{state}:p:{persona}"
    return state


def new_share_token(shard: int) -> str:
    """A share link's secret: the shard (one hex digit) and 192 random bits (32 URL-safe characters)."""
    return f"{shard:x}{secrets.token_urlsafe(24)}"


def new_share_id(shard: int) -> str:
    """A share link's public id (what its owner revokes it by): ``sh``, the shard, 16 hex."""
    return f"sh{shard:x}{secrets.token_hex(8)}"


def shard_of_share(value: str, is_id: bool = False) -> int | None:
    """The shard a share token (or, ``is_id``, a share id) names, or None for anything else."""
    found = (SHARE_ID_PATTERN if is_id else SHARE_TOKEN_PATTERN).match(value)
    if found is None:
        return None
    shard = int(found["shard"], 16)
    return shard if shard < SHARDS else None


def share_key(token: str, shard: int) -> str:
    return f"{shard_prefix(shard)}sh:{token}"


def share_id_key(share_id: str, shard: int) -> str:
    return f"{shard_prefix(shard)}shid:{share_id}"


def alias_key(legacy_id: str) -> str:
    return f"{PREFIX}:alias:{{{legacy_id}}}"


def compose_session_id(user_id: str, seconds: int, suffix: str) -> str:
    """``session_<slug of the user>_<seconds>_<the user's shard><10 hex suffix>``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", user_id).strip("-")[:32] or "user"
    return f"session_{slug}_{seconds}_{shard_of_user(user_id):02x}{suffix}"


def new_session_id(user_id: str) -> str:
    """The guide's ``session_<user>_<seconds>`` made URL-safe, unique within a second, and
    naming the user's shard."""
    return compose_session_id(user_id, int(time.time()), secrets.token_hex(5))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    """ISO 8601, UTC, explicit offset, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
