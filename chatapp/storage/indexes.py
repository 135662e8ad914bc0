"""The sorted-set indexes: listings, index upkeep after a session write, and housekeeping.

Index updates ride in the same pipeline as the session script (one round trip) without
being atomic with it: entries whose session has gone are dropped lazily when a listing
meets them. No request ever scans the keyspace.
"""

from __future__ import annotations

from typing import Any

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import (
    INDEX_ACTIVE,
    INDEX_ARCHIVED,
    now_ms,
    persona_index_key,
    session_key,
    user_index_key,
)
from chatapp.storage.records import Session, session_from_hash


def bump_indexes(pipe: Any, session_id: str, now: int, expires: int) -> None:
    """A write was activity: move the session up in whichever state index holds it."""
    # XX: never (re)creates an entry; GT: a late, older write cannot move it backwards.
    pipe.zadd(INDEX_ACTIVE, {session_id: expires}, xx=True, gt=True)
    pipe.zadd(INDEX_ARCHIVED, {session_id: now}, xx=True, gt=True)


def index_new_session(pipe: Any, session_id: str, user_id: str, persona: str, now: int, expires: int) -> None:
    pipe.zadd(INDEX_ACTIVE, {session_id: expires})
    pipe.zadd(user_index_key(user_id), {session_id: now})
    pipe.zadd(persona_index_key(persona), {session_id: now})


def unindex_session(pipe: Any, session_id: str, user_id: str, persona: str) -> None:
    pipe.zrem(INDEX_ACTIVE, session_id)
    pipe.zrem(INDEX_ARCHIVED, session_id)
    pipe.zrem(user_index_key(user_id), session_id)
    pipe.zrem(persona_index_key(persona), session_id)


class IndexedStore(ScriptedStore):
    """Queries answered from the indexes."""

    def _latest_for_user(self, pipe: Any, user_id: str) -> None:
        keys = [user_index_key(user_id), INDEX_ACTIVE, INDEX_ARCHIVED]
        self._call(pipe, "latest_for_user", keys, [now_ms()])

    def _move_between_indexes(self, session_id: str, archived: bool, now: int, expires: int) -> None:
        def build(pipe: Any) -> None:
            if archived:
                pipe.zrem(INDEX_ACTIVE, session_id)
                pipe.zadd(INDEX_ARCHIVED, {session_id: now})
            else:
                pipe.zrem(INDEX_ARCHIVED, session_id)
                pipe.zadd(INDEX_ACTIVE, {session_id: expires})

        self._round_trip(build)

    def list_sessions(
        self,
        user_id: str | None = None,
        persona: str | None = None,
        archived: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Session], int]:
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
        total, page = self._run("list", keys, args)
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
                sessions.append(session_from_hash(fields))
            else:
                ghosts.append(sid)
        if ghosts:  # expired or deleted behind the index's back: repair it now

            def forget(pipe: Any) -> None:
                pipe.zrem(INDEX_ACTIVE, *ghosts)
                pipe.zrem(INDEX_ARCHIVED, *ghosts)

            self._round_trip(forget)
        return sessions, int(total) - len(ghosts)

    def purge_expired(self, batch: int = 200) -> tuple[int, int]:
        """Remove index entries of sessions that have expired (listings skip them anyway).

        Returns (expired sessions dropped from the active index, stale user/persona
        entries dropped). The user and persona sets are found with SCAN, which is fine for
        an operator's command but is why this never runs inside a request.
        """
        now = now_ms()
        state = [INDEX_ACTIVE, INDEX_ARCHIVED]
        expired = self._run("purge_expired", state, [now])
        filters = [
            key
            for pattern in (user_index_key("*"), persona_index_key("*"))
            for key in self.redis.scan_iter(match=pattern, count=1000)
        ]
        stale = 0
        for start in range(0, len(filters), batch):
            keys = state + filters[start : start + batch]
            stale += self._run("purge_filters", keys, [now])
        return int(expired), int(stale)
