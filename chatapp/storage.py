"""Session storage: the only module that speaks Redis.

Layout (version 1, see migrations_none/README.md):

- ``chatapp:v1:session:{<sid>}``           hash: the session's fields
- ``chatapp:v1:session:{<sid>}:messages``  list: one JSON document per message, oldest first
- ``chatapp:v1:{idx}:active``              zset: live, unarchived sessions scored by expiry (ms)
- ``chatapp:v1:{idx}:archived``            zset: archived sessions scored by last activity (ms)
- ``chatapp:v1:{idx}:user:<user_id>``      zset: a user's sessions (membership, scored by creation)
- ``chatapp:v1:{idx}:persona:<persona>``   zset: a persona's sessions (membership)

The two keys of a session share the hash tag ``{<sid>}``, so each per-session change is
one atomic Lua script on a single server and on Redis Cluster alike. Every index shares
the tag ``{idx}``, so a listing is one script as well. Index updates ride in the same
pipeline as the session script (one round trip) without being atomic with it: entries
whose session has gone are dropped lazily when a listing meets them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from redis.exceptions import NoScriptError

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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_from_ms(ms: int) -> str:
    """ISO 8601, UTC, explicit offset, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def new_session_id(user_id: str) -> str:
    """The guide's ``session_<user>_<seconds>`` made URL-safe and unique within a second."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", user_id).strip("-")[:32] or "user"
    return f"session_{slug}_{int(time.time())}_{secrets.token_hex(5)}"


# --- Lua scripts -----------------------------------------------------------------------
# Session scripts take KEYS = {session hash, messages list} and, first in ARGV, the owner
# ('' for operators): a session owned by someone else is answered exactly like a missing one.

_SESSION_PRELUDE = """
local function owned(owner)
  if redis.call('EXISTS', KEYS[1]) == 0 then return false end
  return owner == '' or redis.call('HGET', KEYS[1], 'user_id') == owner
end
-- Every write is activity: stamp it and slide the expiry of both keys together.
local function touch(now_ms, now_iso, expires_ms)
  redis.call('HSET', KEYS[1], 'last_activity', now_iso, 'last_ms', now_ms)
  if redis.call('HGET', KEYS[1], 'archived') == '1' then
    redis.call('HDEL', KEYS[1], 'expires_ms')
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('HSET', KEYS[1], 'expires_ms', expires_ms)
    redis.call('PEXPIREAT', KEYS[1], expires_ms)
    redis.call('PEXPIREAT', KEYS[2], expires_ms)
  end
end
"""

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
"""

# ARGV: owner, now_ms, now_iso, expires_ms, message JSON...
_APPEND = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 5))
redis.call('HINCRBY', KEYS[1], 'message_count', #ARGV - 4)
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: owner, now_ms, now_iso, expires_ms, limit, message JSON...
# Appends, then answers like _READ with the newest `limit` messages (the new ones included),
# so a reply's context costs no extra round trip.
_APPEND_READ = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
local total = redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
redis.call('HINCRBY', KEYS[1], 'message_count', #ARGV - 5)
touch(ARGV[2], ARGV[3], ARGV[4])
local start = math.max(total - tonumber(ARGV[5]), 0)
return {redis.call('HGETALL', KEYS[1]), start, redis.call('LRANGE', KEYS[2], start, -1)}
"""
)

# ARGV: owner, limit ('' = all, '0' = none), before (index, '' = from the newest)
_READ = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
local fields = redis.call('HGETALL', KEYS[1])
if ARGV[2] == '0' then return {fields, 0, {}} end
local total = redis.call('LLEN', KEYS[2])
local stop = total - 1
if ARGV[3] ~= '' then stop = math.min(tonumber(ARGV[3]), total) - 1 end
local start = 0
if ARGV[2] ~= '' then start = math.max(stop - tonumber(ARGV[2]) + 1, 0) end
if stop < start then return {fields, start, {}} end
return {fields, start, redis.call('LRANGE', KEYS[2], start, stop)}
"""
)

# ARGV: owner, now_ms, now_iso, expires_ms, archived ('1', '0' or '' to keep),
#       number of fields to set N, N field/value pairs, then fields to delete
_UPDATE = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'archived', ARGV[5]) end
local n = tonumber(ARGV[6])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 7, 6 + 2 * n)) end
if #ARGV > 6 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 7 + 2 * n)) end
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: owner, now_ms, now_iso, expires_ms
_CLEAR = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'message_count', 0)
touch(ARGV[2], ARGV[3], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: owner
_DELETE = (
    _SESSION_PRELUDE
    + """
if not owned(ARGV[1]) then return false end
local fields = redis.call('HMGET', KEYS[1], 'user_id', 'persona')
redis.call('DEL', KEYS[1], KEYS[2])
return fields
"""
)

# Index scripts. KEYS = {state index, other state index, filter set...};
# ARGV: now_ms, offset, limit, '1' when the state index is the (expiring) active one.
_LIST = """
local now, offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if ARGV[4] == '1' then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
if #KEYS == 2 then
  return {redis.call('ZCARD', KEYS[1]),
          redis.call('ZREVRANGE', KEYS[1], offset, offset + limit - 1, 'WITHSCORES')}
end
-- Filtered: walk the (small) first filter set, keep members alive in the state index.
local hits = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local score = redis.call('ZSCORE', KEYS[1], sid)
  if score and tonumber(score) > (ARGV[4] == '1' and now or -1) then
    if not KEYS[4] or redis.call('ZSCORE', KEYS[4], sid) then
      table.insert(hits, {sid, tonumber(score)})
    end
  elseif not score and not redis.call('ZSCORE', KEYS[2], sid) then
    redis.call('ZREM', KEYS[3], sid)  -- neither live nor archived: forget it lazily
  end
end
table.sort(hits, function(a, b)
  if a[2] == b[2] then return a[1] > b[1] end
  return a[2] > b[2]
end)
local page = {}
for i = offset + 1, math.min(offset + limit, #hits) do
  table.insert(page, hits[i][1])
  table.insert(page, tostring(hits[i][2]))
end
return {#hits, page}
"""

# KEYS = {user set, active index, archived index}; ARGV: now_ms.
# The user's most recently active session: live ones first, then archived ones.
_LATEST_FOR_USER = """
local now = tonumber(ARGV[1])
local best, best_score = false, -1
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(members) do
  local score = tonumber(redis.call('ZSCORE', KEYS[2], sid) or '-1')
  if score > now and score > best_score then best, best_score = sid, score end
end
if best then return best end
for _, sid in ipairs(members) do
  local score = tonumber(redis.call('ZSCORE', KEYS[3], sid) or '-1')
  if score > best_score then best, best_score = sid, score end
end
return best
"""

# KEYS = {active index, archived index}; ARGV: now_ms. Drops expired entries of the
# active index, returning how many.
_PURGE_EXPIRED = """
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
"""

# KEYS = {active index, archived index, filter set...}; ARGV: now_ms. Drops filter-set
# members that are neither live nor archived, returning how many.
_PURGE_FILTERS = """
local now, removed = tonumber(ARGV[1]), 0
for i = 3, #KEYS do
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    local live = tonumber(redis.call('ZSCORE', KEYS[1], sid) or '-1') > now
    if not live and not redis.call('ZSCORE', KEYS[2], sid) then
      removed = removed + redis.call('ZREM', KEYS[i], sid)
    end
  end
end
return removed
"""


@dataclass(frozen=True)
class _Script:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


SCRIPTS = {
    name: _Script(source)
    for name, source in {
        "create": _CREATE,
        "append": _APPEND,
        "append_read": _APPEND_READ,
        "read": _READ,
        "update": _UPDATE,
        "clear": _CLEAR,
        "delete": _DELETE,
        "list": _LIST,
        "latest_for_user": _LATEST_FOR_USER,
        "purge_expired": _PURGE_EXPIRED,
        "purge_filters": _PURGE_FILTERS,
    }.items()
}


class SessionStore:
    """Sessions and their messages over one Redis (or Redis Cluster) client."""

    def __init__(self, client: redis.Redis, timeout_seconds: int) -> None:
        self.redis = client
        self.timeout_ms = timeout_seconds * 1000
        # Redis Cluster clients route by key; plain clients (and flask-redis proxies of them)
        # have no such method.
        self._node_for_key: Callable[[str], Any] | None = getattr(client, "get_node_from_key", None)

    # --- plumbing -------------------------------------------------------------------

    def load_scripts(self) -> None:
        """Load every script, so later calls go by SHA only."""
        for script in SCRIPTS.values():
            self.redis.script_load(script.source)

    def _round_trip(self, build: Callable[[Any], None]) -> list[Any]:
        """Send the commands ``build`` queues on a pipeline in one round trip.

        A server that lost its script cache (restart, failover) answers NOSCRIPT;
        the scripts are reloaded and the batch sent once more.
        """
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            build(pipe)
            results = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                self.load_scripts()
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results
        raise AssertionError("unreachable")

    def _call(self, pipe: Any, name: str, keys: list[str], args: Iterable[Any]) -> None:
        options: dict[str, Any] = {}
        if self._node_for_key is not None:
            # On a cluster, name the node of the script's slot: redis-py's cluster pipeline
            # blocks pipe.evalsha and would otherwise ask the server (COMMAND GETKEYS) where
            # a raw EVALSHA goes, an extra round trip per script. MOVED still redirects.
            options["target_nodes"] = self._node_for_key(keys[0])
        pipe.execute_command("EVALSHA", SCRIPTS[name].sha, len(keys), *keys, *args, **options)

    def _session_call(self, pipe: Any, name: str, session_id: str, args: Iterable[Any]) -> None:
        self._call(pipe, name, [session_key(session_id), messages_key(session_id)], args)

    def _stamp(self) -> tuple[int, str, int]:
        now = now_ms()
        return now, iso_from_ms(now), now + self.timeout_ms

    @staticmethod
    def _bump_indexes(pipe: Any, session_id: str, now: int, expires: int) -> None:
        # XX: never (re)creates an entry; GT: a late, older write cannot move it backwards.
        pipe.zadd(INDEX_ACTIVE, {session_id: expires}, xx=True, gt=True)
        pipe.zadd(INDEX_ARCHIVED, {session_id: now}, xx=True, gt=True)

    # --- sessions -------------------------------------------------------------------

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def create_session(
        self,
        user_id: str,
        persona: str,
        display_name: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        session_id = new_session_id(user_id)
        now, now_iso, expires = self._stamp()
        fields = {
            "session_id": session_id,
            "user_id": user_id,
            "persona": persona,
            "metadata": json.dumps(metadata or {}, separators=(",", ":")),
            "created_at": now_iso,
            "created_ms": now,
            "last_activity": now_iso,
            "last_ms": now,
            "message_count": 0,
            "archived": "0",
            "expires_ms": expires,
        }
        if display_name:
            fields["display_name"] = display_name
        if description:
            fields["description"] = description
        flat = [item for pair in fields.items() for item in pair]

        def build(pipe: Any) -> None:
            self._session_call(pipe, "create", session_id, [expires, *flat])
            pipe.zadd(INDEX_ACTIVE, {session_id: expires})
            pipe.zadd(user_index_key(user_id), {session_id: now})
            pipe.zadd(persona_index_key(persona), {session_id: now})

        created = self._round_trip(build)[0]
        if not created:  # 40 random bits within one second and slug: never in practice
            raise RuntimeError(f"session id collision: {session_id}")
        return _session_from_hash({k: str(v) for k, v in fields.items()})

    def get_session(self, session_id: str, owner: str | None = None) -> dict[str, Any] | None:
        found = self.read_messages(session_id, owner=owner, limit=0)
        return found[0] if found else None

    def read_messages(
        self,
        session_id: str,
        owner: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]], int] | None:
        """The session, its messages (all, or the newest ``limit`` before index ``before``)
        and the list index of the first message returned; None when not found."""
        if not SESSION_ID_PATTERN.match(session_id):
            return None
        args = [owner or "", "" if limit is None else limit, "" if before is None else before]
        result = self._round_trip(lambda pipe: self._session_call(pipe, "read", session_id, args))
        return _read_result(result[0])

    def history(
        self, session_or_user: str, owner: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Full history of a session id, or of a user's most recently active session."""
        found = self._resolve(session_or_user, owner, "read", lambda sid: [owner or "", "", ""])
        if found is None:
            return None
        session, messages, _ = _read_result(found)
        return session, messages

    def append_messages(
        self, session_id: str, messages: list[dict[str, Any]], owner: str | None = None
    ) -> dict[str, Any] | None:
        """Append messages atomically; returns the updated session, or None if not found."""
        if not SESSION_ID_PATTERN.match(session_id):
            return None
        now, now_iso, expires = self._stamp()
        docs = [json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in messages]

        def build(pipe: Any) -> None:
            self._session_call(pipe, "append", session_id, [owner or "", now, now_iso, expires, *docs])
            self._bump_indexes(pipe, session_id, now, expires)

        return _hash_result(self._round_trip(build)[0])

    def append_and_read(
        self, session_id: str, messages: list[dict[str, Any]], limit: int, owner: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Append messages and return the updated session with its newest ``limit`` messages
        (the appended ones last), in one round trip; None if not found."""
        if not SESSION_ID_PATTERN.match(session_id):
            return None
        now, now_iso, expires = self._stamp()
        docs = [json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in messages]
        args = [owner or "", now, now_iso, expires, max(limit, len(messages)), *docs]

        def build(pipe: Any) -> None:
            self._session_call(pipe, "append_read", session_id, args)
            self._bump_indexes(pipe, session_id, now, expires)

        found = _read_result(self._round_trip(build)[0])
        return (found[0], found[1]) if found else None

    def update_session(
        self, session_id: str, changes: dict[str, Any], owner: str | None = None
    ) -> dict[str, Any] | None:
        """Rename, describe, archive or unarchive. Changing ``archived`` moves the session
        between indexes, which needs a second round trip once the script has succeeded."""
        if not SESSION_ID_PATTERN.match(session_id):
            return None
        now, now_iso, expires = self._stamp()
        archived = changes.get("archived")
        mode = "" if archived is None else ("1" if archived else "0")
        to_set = {k: changes[k] for k in ("display_name", "description") if changes.get(k)}
        to_delete = [k for k in ("display_name", "description") if k in changes and not changes[k]]
        args = [owner or "", now, now_iso, expires, mode, len(to_set)]
        args += [item for pair in to_set.items() for item in pair] + to_delete

        def build(pipe: Any) -> None:
            self._session_call(pipe, "update", session_id, args)
            self._bump_indexes(pipe, session_id, now, expires)

        session = _hash_result(self._round_trip(build)[0])
        if session is not None and archived is not None:
            self._move_between_indexes(session_id, archived, now, expires)
        return session

    def _move_between_indexes(self, session_id: str, archived: bool, now: int, expires: int) -> None:
        def build(pipe: Any) -> None:
            if archived:
                pipe.zrem(INDEX_ACTIVE, session_id)
                pipe.zadd(INDEX_ARCHIVED, {session_id: now})
            else:
                pipe.zrem(INDEX_ARCHIVED, session_id)
                pipe.zadd(INDEX_ACTIVE, {session_id: expires})

        self._round_trip(build)

    def clear_session(self, session_or_user: str, owner: str | None = None) -> dict[str, Any] | None:
        """Drop a session's messages but keep the session (a session id or a user id)."""
        now, now_iso, expires = self._stamp()
        found = self._resolve(
            session_or_user,
            owner,
            "clear",
            lambda sid: [owner or "", now, now_iso, expires],
            lambda pipe, sid: self._bump_indexes(pipe, sid, now, expires),
        )
        return _hash_result(found) if found is not None else None

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        """Remove a session and all its data. Its index entries go in a second round trip,
        only once the script has confirmed the caller owned it."""
        if not SESSION_ID_PATTERN.match(session_id):
            return False
        result = self._round_trip(lambda pipe: self._session_call(pipe, "delete", session_id, [owner or ""]))[0]
        if not result:
            return False
        user_id, persona = result

        def build(pipe: Any) -> None:
            pipe.zrem(INDEX_ACTIVE, session_id)
            pipe.zrem(INDEX_ARCHIVED, session_id)
            pipe.zrem(user_index_key(user_id), session_id)
            pipe.zrem(persona_index_key(persona), session_id)

        self._round_trip(build)
        return True

    def _resolve(
        self,
        session_or_user: str,
        owner: str | None,
        script: str,
        args_for: Callable[[str], list[Any]],
        extra: Callable[[Any, str], None] | None = None,
    ) -> Any:
        """Run a session script on a session id or, failing that, on the user's latest
        session. One round trip when given a session id, two for a user id."""
        as_session = SESSION_ID_PATTERN.match(session_or_user) is not None
        # A visitor may name only itself as a user.
        as_user = owner is None or session_or_user == owner
        now = now_ms()

        def first(pipe: Any) -> None:
            if as_session:
                self._session_call(pipe, script, session_or_user, args_for(session_or_user))
                if extra:
                    extra(pipe, session_or_user)
            if as_user:
                keys = [user_index_key(session_or_user), INDEX_ACTIVE, INDEX_ARCHIVED]
                self._call(pipe, "latest_for_user", keys, [now])

        if not (as_session or as_user):
            return None
        results = self._round_trip(first)
        if as_session and results[0]:
            return results[0]
        latest = results[-1] if as_user else None
        if not latest:
            return None

        def second(pipe: Any) -> None:
            self._session_call(pipe, script, latest, args_for(latest))
            if extra:
                extra(pipe, latest)

        return self._round_trip(second)[0] or None

    # --- listing --------------------------------------------------------------------

    def list_sessions(
        self,
        user_id: str | None = None,
        persona: str | None = None,
        archived: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of sessions, most recent activity first, and the total that match.

        Two round trips: the page of ids from the index, then their hashes.
        """
        state, other = (INDEX_ARCHIVED, INDEX_ACTIVE) if archived else (INDEX_ACTIVE, INDEX_ARCHIVED)
        keys = [state, other]
        if user_id is not None:
            keys.append(user_index_key(user_id))
        if persona is not None:
            keys.append(persona_index_key(persona))
        args = [now_ms(), offset, limit, "0" if archived else "1"]
        total, page = self._round_trip(lambda pipe: self._call(pipe, "list", keys, args))[0]
        session_ids = page[::2]
        if not session_ids:
            return [], int(total)

        def fetch(pipe: Any) -> None:
            for sid in session_ids:
                pipe.hgetall(session_key(sid))

        hashes = self._round_trip(fetch)
        sessions, ghosts = [], []
        for sid, fields in zip(session_ids, hashes, strict=True):
            if fields:
                sessions.append(_session_from_hash(fields))
            else:
                ghosts.append(sid)
        if ghosts:  # expired or deleted behind the index's back: repair it now
            self._round_trip(lambda pipe: (pipe.zrem(INDEX_ACTIVE, *ghosts), pipe.zrem(INDEX_ARCHIVED, *ghosts)))
        return sessions, int(total) - len(ghosts)

    # --- maintenance (operators' CLI; never on a request path) ------------------------

    def purge_expired(self, batch: int = 200) -> tuple[int, int]:
        """Remove index entries of sessions that have expired (listings skip them anyway).

        Returns (expired sessions dropped from the active index, stale user/persona
        entries dropped). The user and persona sets are found with SCAN, which is fine for
        an operator's command but is why this never runs inside a request.
        """
        now = now_ms()
        state = [INDEX_ACTIVE, INDEX_ARCHIVED]
        expired = self._round_trip(lambda pipe: self._call(pipe, "purge_expired", state, [now]))[0]
        filters = [
            key
            for pattern in (user_index_key("*"), persona_index_key("*"))
            for key in self.redis.scan_iter(match=pattern, count=1000)
        ]
        stale = 0
        for start in range(0, len(filters), batch):
            keys = state + filters[start : start + batch]
            stale += self._round_trip(lambda pipe, keys=keys: self._call(pipe, "purge_filters", keys, [now]))[0]
        return int(expired), int(stale)


# --- decoding -------------------------------------------------------------------------


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _hash_result(result: Any) -> dict[str, Any] | None:
    return _session_from_hash(_pairs(result)) if result else None


def _read_result(result: Any) -> tuple[dict[str, Any], list[dict[str, Any]], int] | None:
    if not result:
        return None
    fields, start, docs = result
    return _session_from_hash(_pairs(fields)), [json.loads(d) for d in docs], int(start)


def _session_from_hash(fields: dict[str, str]) -> dict[str, Any]:
    archived = fields.get("archived") == "1"
    expires = fields.get("expires_ms")
    return {
        "session_id": fields["session_id"],
        "user_id": fields["user_id"],
        "persona": fields["persona"],
        "display_name": fields.get("display_name"),
        "description": fields.get("description"),
        "metadata": json.loads(fields.get("metadata") or "{}"),
        "created_at": fields["created_at"],
        "last_activity": fields["last_activity"],
        "message_count": int(fields.get("message_count", 0)),
        "archived": archived,
        "expires_at": iso_from_ms(int(expires)) if expires and not archived else None,
    }


def make_message(role: str, content: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "timestamp": iso_from_ms(now_ms()),
        "metadata": metadata or {},
    }
