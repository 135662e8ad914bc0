"""SessionStore: sessions and their messages, each change one script over the session's shard."""

from __future__ import annotations

import json
from typing import Any, cast

from chatapp.storage.keys import index_name, new_session_id, session_key, shard_of_user, shard_prefix
from chatapp.storage.live import LiveStore
from chatapp.storage.records import (
    Message,
    Session,
    message_json,
    pairs,
    read_result,
    session_from_hash,
    session_result,
)
from chatapp.storage.replies import ReplyStore
from chatapp.storage.search import SearchStore
from chatapp.storage.shares import ShareStore
from chatapp.storage.transfer import TransferStore

HISTORY_PAGE = 200  # messages a history answers when not asked for a number
BulkAnswer = Session | bool | Exception | None
# What POST /api/sessions/bulk can do to each session: the change it makes (None: delete).
BULK_ACTIONS: dict[str, dict[str, bool] | None] = {
    "archive": {"archived": True},
    "unarchive": {"archived": False},
    "pin": {"pinned": True},
    "unpin": {"pinned": False},
    "delete": None,
}


class SessionStore(TransferStore, ReplyStore, LiveStore, ShareStore, SearchStore):
    """Sessions and their messages over one Redis (or Redis Cluster) client.

    ``owner`` restricts an operation to that user's sessions (a visitor); None means any
    session (an operator). Someone else's session is answered exactly like a missing one.
    Every write is one script: the session, its summary and every index change together.
    """

    def create_session(
        self,
        user_id: str,
        persona: str,
        display_name: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> Session:
        """A new session of ``user_id``; ``owner`` (a visitor creating its own) applies its quotas."""
        session_id = new_session_id(user_id)
        shard = shard_of_user(user_id)
        stamp = self._stamp()
        now, now_iso, expires, expires_iso = stamp
        fields: dict[str, Any] = {
            "session_id": session_id,
            "user_id": user_id,
            "persona": persona,
            "metadata": json.dumps(metadata or {}, separators=(",", ":"), ensure_ascii=False),
            "created_at": now_iso,
            "created_ms": now,
            "last_activity": now_iso,
            "last_ms": now,
            "message_count": 0,
            "archived": "0",
            "expires_ms": expires,
            "expires_at": expires_iso,
        }
        if display_name:
            fields["display_name"] = display_name
        if description:
            fields["description"] = description
        flat = [item for pair in fields.items() for item in pair]
        key = session_key(session_id, shard)
        args = [session_id, *stamp, self._token(), self._quotas(owner), user_id, *flat]
        created = self._run("create", shard, key, args)
        if not created:  # 40 random bits within one second and slug: never in practice
            raise RuntimeError(f"session id collision: {session_id}")
        return session_from_hash({k: str(v) for k, v in fields.items()})

    def get_session(self, session_id: str, owner: str | None = None) -> Session | None:
        found = self.read_messages(session_id, owner=owner, limit=0)
        return found[0] if found else None

    def read_messages(
        self,
        session_id: str,
        owner: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> tuple[Session, list[Message], int] | None:
        """The session, its messages (all, or the newest ``limit`` before index ``before``)
        and the list index of the first message returned; None when not found."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        args = [sid, owner or "", -1 if limit is None else limit, "" if before is None else before]
        return read_result(self._run("read", shard, session_key(sid, shard), args))

    def read_stored(
        self, session_id: str, owner: str | None = None, limit: int = -1, before: int | None = None
    ) -> tuple[Session, list[str], int] | None:
        """Like ``read_messages``, with each message's JSON exactly as stored: what a version
        change is built on and compared with when it is written."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        args = [sid, owner or "", limit, "" if before is None else before]
        found = self._run("read", shard, session_key(sid, shard), args)
        if not found:
            return None
        fields, start, docs = found
        return session_from_hash(pairs(fields)), [str(d) for d in docs], int(start)

    def replace_messages(
        self,
        session_id: str,
        start: int,
        read: list[str],
        messages: list[Message],
        owner: str | None = None,
        whole: bool = True,
    ) -> Session | None:
        """Replace the messages from index ``start`` on (which must still be ``read``, their
        JSON as read) by ``messages`` (``whole`` false: the one message at ``start`` by one),
        and tell the session's listeners; None when not found. Raises ``HistoryChanged`` when
        they changed meanwhile, ``ReplyRunning`` while a reply runs, ``QuotaExceeded`` when a
        quota refuses: nothing is written."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        args = [sid, *self._stamp(), owner or "", self._token(), self._quotas(owner), "1" if whole else "0"]
        args += [start, len(read), *read]
        args += [message_json(m) for m in messages]
        return session_result(self._run("version", shard, session_key(sid, shard), args))

    def history(
        self, session_or_user: str, owner: str | None = None, limit: int = HISTORY_PAGE, before: int | None = None
    ) -> tuple[Session, list[Message], int] | None:
        """A page of the history of a session id, or of a user's most recently active session:
        the newest ``limit`` messages before index ``before``, and the index of the first."""
        found = self.read_messages(session_or_user, owner, limit, before)
        if found is not None or (owner is not None and session_or_user != owner):
            return found  # a visitor may name only itself as a user
        shard = shard_of_user(session_or_user)
        args = [session_or_user, self._stamp()[0], limit, "" if before is None else before]
        key = shard_prefix(shard) + index_name(False, session_or_user)
        return read_result(self._run("latest", shard, key, args))

    def append_messages(
        self,
        session_id: str,
        messages: list[Message],
        owner: str | None = None,
        limited: bool = True,
        announced: bool = True,
    ) -> Session | None:
        """Append messages atomically; returns the updated session, or None if not found.
        A visitor's quotas apply unless ``limited`` is false. Each message is told to the
        session's listeners unless ``announced`` is false (a bulk load nobody watches)."""
        found = self._append(session_id, messages, 0, owner, limited, announced)
        return found[0] if found else None

    def append_and_read(
        self, session_id: str, messages: list[Message], limit: int, owner: str | None = None
    ) -> tuple[Session, list[Message]] | None:
        """Append messages and return the updated session with its newest ``limit`` messages
        (the appended ones last), in one round trip; None if not found."""
        return self._append(session_id, messages, max(limit, len(messages)), owner, True, True)

    def _append(
        self, session_id: str, messages: list[Message], limit: int, owner: str | None, limited: bool, announced: bool
    ) -> tuple[Session, list[Message]] | None:
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        docs = [message_json(m) for m in messages]
        quota = self._quotas(owner, limited)
        args = [sid, *self._stamp(), owner or "", self._token(), limit, quota, "1" if announced else "0", *docs]
        found = read_result(self._run("append", shard, session_key(sid, shard), args))
        return (found[0], found[1]) if found else None

    def update_session(self, session_id: str, changes: dict[str, Any], owner: str | None = None) -> Session | None:
        """Rename, describe, archive or pin (or undo either), with the index move in the same step."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        args = self._update_args(sid, changes, owner)
        return session_result(self._run("update", shard, session_key(sid, shard), args))

    def _update_args(self, sid: str, changes: dict[str, Any], owner: str | None) -> list[Any]:
        def mode(flag: str) -> str:
            return "" if changes.get(flag) is None else ("1" if changes[flag] else "0")

        to_set = {k: changes[k] for k in ("display_name", "description") if changes.get(k)}
        to_delete = [k for k in ("display_name", "description") if k in changes and not changes[k]]
        args: list[Any] = [sid, *self._stamp(), owner or "", self._token(), self._quotas(owner)]
        args += [mode("archived"), mode("pinned"), len(to_set)]
        args += [item for pair in to_set.items() for item in pair]
        return args + to_delete

    def bulk(self, action: str, session_ids: list[str], owner: str | None = None) -> list[BulkAnswer]:
        """One action (BULK_ACTIONS) on each of several sessions, in one round trip: each
        session's change is its own script, so each is atomic and none waits on another.

        Per session, in order: the changed session (True for a delete), None when it is not
        found (or not ``owner``'s), or the error that refused it (QuotaExceeded).
        """
        change = BULK_ACTIONS[action]
        located = [self._locate(sid) for sid in session_ids]
        found = [loc for loc in located if loc is not None]

        def queue(pipe: Any) -> None:
            for sid, shard in found:
                if change is None:
                    self._call(pipe, "delete", shard, session_key(sid, shard), [sid, owner or ""])
                else:
                    self._call(pipe, "update", shard, session_key(sid, shard), self._update_args(sid, change, owner))

        answers = iter(self._round_trip_each(queue) if found else [])
        results: list[BulkAnswer] = []
        for loc in located:
            answer = next(answers) if loc is not None else None
            if isinstance(answer, Exception) or answer is None:
                results.append(answer)
            elif change is None:
                results.append(bool(answer) or None)
            else:
                results.append(session_result(answer))
        return results

    def clear_session(self, session_or_user: str, owner: str | None = None) -> Session | None:
        """Drop a session's messages but keep the session (a session id or a user id)."""
        located = self._locate(session_or_user)
        if located is not None:
            sid, shard = located
            args = [sid, *self._stamp(), owner or "", ""]
            cleared = session_result(self._run("clear", shard, session_key(sid, shard), args))
            if cleared is not None:
                return cleared
        if owner is not None and session_or_user != owner:
            return None  # a visitor may name only itself as a user
        shard = shard_of_user(session_or_user)
        args = ["", *self._stamp(), owner or "", session_or_user]
        key = shard_prefix(shard) + index_name(False, session_or_user)
        return session_result(self._run("clear", shard, key, args))

    # --- quotas an operator sets for one user -------------------------------------------

    def user_quotas(self, user_id: str) -> dict[str, int]:
        """This user's own quota settings (overriding the defaults), by name."""
        shard = shard_of_user(user_id)
        raw = cast(dict[str, str], self.redis.hgetall(shard_prefix(shard) + f"quota:u:{user_id}"))
        return {k: int(v) for k, v in raw.items()}

    def set_user_quotas(self, user_id: str, values: dict[str, int | None]) -> dict[str, int]:
        """Set (a number; 0 lifts it) or drop (None: back to the default) a user's quotas."""
        key = shard_prefix(shard_of_user(user_id)) + f"quota:u:{user_id}"
        to_set = {name: int(value) for name, value in values.items() if value is not None}
        to_drop = [name for name, value in values.items() if value is None]
        pipe = self.redis.pipeline(transaction=False)
        if to_set:
            pipe.hset(key, items=[item for pair in to_set.items() for item in pair])
        if to_drop:
            pipe.hdel(key, *to_drop)
        pipe.execute()
        return self.user_quotas(user_id)

    def user_usage(self, user_id: str) -> dict[str, int]:
        """What a user holds now, against each quota (messages per session: the fullest)."""
        shard = shard_of_user(user_id)
        prefix = shard_prefix(shard)
        live = self.list_page(user_id=user_id, limit=0).total
        kept = self.list_page(user_id=user_id, archived=True, limit=0).total
        used = int(cast(str | None, self.redis.get(prefix + f"used:u:{user_id}")) or 0)
        return {"live_sessions": live, "kept_sessions": kept, "bytes": used}

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        """Remove a session, its messages and its index entries in one step."""
        located = self._locate(session_id)
        if located is None:
            return False
        sid, shard = located
        return bool(self._run("delete", shard, session_key(sid, shard), [sid, owner or ""]))
