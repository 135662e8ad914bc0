"""SessionStore: sessions and their messages, each change one script over the session's keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chatapp.storage.indexes import IndexedStore, bump_indexes, index_new_session, unindex_session
from chatapp.storage.keys import is_session_id, iso_from_ms, new_session_id, now_ms
from chatapp.storage.records import Message, Session, message_json, read_result, session_from_hash, session_result


class SessionStore(IndexedStore):
    """Sessions and their messages over one Redis (or Redis Cluster) client.

    ``owner`` restricts an operation to that user's sessions (a visitor); None means any
    session (an operator). Someone else's session is answered exactly like a missing one.
    """

    def _stamp(self) -> tuple[int, str, int]:
        now = now_ms()
        return now, iso_from_ms(now), now + self.timeout_ms

    def create_session(
        self,
        user_id: str,
        persona: str,
        display_name: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        session_id = new_session_id(user_id)
        now, now_iso, expires = self._stamp()
        fields: dict[str, Any] = {
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
            index_new_session(pipe, session_id, user_id, persona, now, expires)

        created = self._round_trip(build)[0]
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
        if not is_session_id(session_id):
            return None
        args = [owner or "", "" if limit is None else limit, "" if before is None else before]
        result = self._round_trip(lambda pipe: self._session_call(pipe, "read", session_id, args))
        return read_result(result[0])

    def history(self, session_or_user: str, owner: str | None = None) -> tuple[Session, list[Message]] | None:
        """Full history of a session id, or of a user's most recently active session."""
        found = self._resolve(session_or_user, owner, "read", lambda sid: [owner or "", "", ""])
        decoded = read_result(found)
        return (decoded[0], decoded[1]) if decoded else None

    def append_messages(self, session_id: str, messages: list[Message], owner: str | None = None) -> Session | None:
        """Append messages atomically; returns the updated session, or None if not found."""
        if not is_session_id(session_id):
            return None
        now, now_iso, expires = self._stamp()
        docs = [message_json(m) for m in messages]

        def build(pipe: Any) -> None:
            self._session_call(pipe, "append", session_id, [owner or "", now, now_iso, expires, *docs])
            bump_indexes(pipe, session_id, now, expires)

        return session_result(self._round_trip(build)[0])

    def append_and_read(
        self, session_id: str, messages: list[Message], limit: int, owner: str | None = None
    ) -> tuple[Session, list[Message]] | None:
        """Append messages and return the updated session with its newest ``limit`` messages
        (the appended ones last), in one round trip; None if not found."""
        if not is_session_id(session_id):
            return None
        now, now_iso, expires = self._stamp()
        docs = [message_json(m) for m in messages]
        args = [owner or "", now, now_iso, expires, max(limit, len(messages)), *docs]

        def build(pipe: Any) -> None:
            self._session_call(pipe, "append_read", session_id, args)
            bump_indexes(pipe, session_id, now, expires)

        found = read_result(self._round_trip(build)[0])
        return (found[0], found[1]) if found else None

    def update_session(self, session_id: str, changes: dict[str, Any], owner: str | None = None) -> Session | None:
        """Rename, describe, archive or unarchive. Changing ``archived`` moves the session
        between indexes, which needs a second round trip once the script has succeeded."""
        if not is_session_id(session_id):
            return None
        now, now_iso, expires = self._stamp()
        archived = changes.get("archived")
        mode = "" if archived is None else ("1" if archived else "0")
        to_set = {k: changes[k] for k in ("display_name", "description") if changes.get(k)}
        to_delete = [k for k in ("display_name", "description") if k in changes and not changes[k]]
        args: list[Any] = [owner or "", now, now_iso, expires, mode, len(to_set)]
        args += [item for pair in to_set.items() for item in pair]
        args += to_delete

        def build(pipe: Any) -> None:
            self._session_call(pipe, "update", session_id, args)
            bump_indexes(pipe, session_id, now, expires)

        session = session_result(self._round_trip(build)[0])
        if session is not None and archived is not None:
            self._move_between_indexes(session_id, archived, now, expires)
        return session

    def clear_session(self, session_or_user: str, owner: str | None = None) -> Session | None:
        """Drop a session's messages but keep the session (a session id or a user id)."""
        now, now_iso, expires = self._stamp()
        found = self._resolve(
            session_or_user,
            owner,
            "clear",
            lambda sid: [owner or "", now, now_iso, expires],
            lambda pipe, sid: bump_indexes(pipe, sid, now, expires),
        )
        return session_result(found)

    def delete_session(self, session_id: str, owner: str | None = None) -> bool:
        """Remove a session and all its data. Its index entries go in a second round trip,
        only once the script has confirmed the caller owned it."""
        if not is_session_id(session_id):
            return False
        result = self._round_trip(lambda pipe: self._session_call(pipe, "delete", session_id, [owner or ""]))[0]
        if not result:
            return False
        user_id, persona = result
        self._round_trip(lambda pipe: unindex_session(pipe, session_id, user_id, persona))
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
        as_session = is_session_id(session_or_user)
        # A visitor may name only itself as a user.
        as_user = owner is None or session_or_user == owner
        if not (as_session or as_user):
            return None

        def first(pipe: Any) -> None:
            if as_session:
                self._session_call(pipe, script, session_or_user, args_for(session_or_user))
                if extra:
                    extra(pipe, session_or_user)
            if as_user:
                self._latest_for_user(pipe, session_or_user)

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
