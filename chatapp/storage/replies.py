"""A reply's life in Redis: claimed with the message that asks for it, its pieces published
as they come, stopped on request, and stored once at its end.

The claim (``P r:<sid>``) makes one reply at a time per session, across every worker and
host; it is a lease the reply renews with each piece or heartbeat, so a reply whose worker
died frees its session when the lease runs out. Every step is one script over the
session's shard, and each tells the session's listeners (``chatapp.storage.live``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import reply_key, session_key, shard_prefix
from chatapp.storage.records import Message, Session, message_json, read_result, session_result

LEASE_MS = 30_000  # a claim not renewed for this long is free again (the worker is gone)
STOP = "stop"  # what reply_progress answers when someone asked the reply to stop
GONE = "gone"  # ... when the reply is no longer the session's (deleted, or its lease ran out)


def new_reply_id() -> str:
    return f"reply_{secrets.token_hex(8)}"


class ReplyStore(ScriptedStore):
    """The running reply of a session: begin, progress, stop, end."""

    def begin_reply(
        self,
        session_id: str,
        reply_id: str,
        messages: list[Message],
        limit: int,
        owner: str | None,
        mode: str = "",
        start: int = 0,
        read: Sequence[str] = (),
    ) -> tuple[Session, list[Message]] | None:
        """Claim the session's reply and store ``messages`` (the user's, or none for a retry).

        ``mode`` ``regenerate``: the reply will take the place of the last message, at index
        ``start``, which must still be ``read[0]`` (its JSON as read). ``edit``: ``messages``
        replace the messages from ``start`` on, which must still be ``read``. Returns the
        session and its newest ``limit`` messages (the model's context); None when not found.
        Raises ``ReplyRunning`` while another reply runs, ``QuotaExceeded`` when a quota refuses
        the message, ``HistoryChanged`` when the messages read changed: nothing is written.
        """
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        args = [sid, *self._stamp(), owner or "", self._token(), limit, self._quotas(owner), reply_id, LEASE_MS]
        args += [mode, start, len(read), *read]
        args += [message_json(m) for m in messages]
        found = read_result(self._run("reply_begin", shard, session_key(sid, shard), args))
        return (found[0], found[1]) if found else None

    def replies_progress(self, replies: Sequence[tuple[str, str, Sequence[tuple[str, str]]]]) -> list[str]:
        """Publish each reply's pieces (``delta`` or ``reasoning``, text) and renew its lease
        (no pieces: a heartbeat), in one round trip: one script call for all of them on a
        single server, one per shard on a cluster (a script stays in one slot). Answers STOP,
        GONE or '' for each."""
        # Each reply located once (the build may be sent twice, after a NOSCRIPT), grouped by
        # shard on a cluster.
        groups: dict[int, list[int]] = {}
        located = [self._locate_stored(session_id) for session_id, _, _ in replies]
        for n, (_, shard) in enumerate(located):
            groups.setdefault(shard if self._node_for_key is not None else -1, []).append(n)

        def build(pipe: Any) -> None:
            for members in groups.values():
                args: list[Any] = [LEASE_MS]
                for n in members:
                    (sid, shard), (_, reply_id, pieces) = located[n], replies[n]
                    args += [shard_prefix(shard), sid, reply_id, len(pieces)]
                    args += [item for piece in pieces for item in piece]
                first_sid, first_shard = located[members[0]]
                self._call(pipe, "reply_progress", first_shard, reply_key(first_sid, first_shard), args)

        answers = [""] * len(replies)
        if replies:
            for members, found in zip(groups.values(), self._round_trip(build), strict=True):
                for n, answer in zip(members, found, strict=True):
                    answers[n] = str(answer)
        return answers

    def end_reply(
        self,
        session_id: str,
        reply_id: str,
        outcome: str,
        data: dict[str, Any],
        message: Message | None,
        pieces: Sequence[tuple[str, str]] = (),
    ) -> Session | None:
        """Publish the last ``pieces``, store the reply's message (if any), free the session,
        and send ``outcome`` (``done`` or ``error``) with ``data`` to the listeners. None when
        the session is gone."""
        sid, shard = self._locate_stored(session_id)
        event = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        args = [sid, *self._stamp(), reply_id, outcome, self._token(), event, len(pieces)]
        args += [item for piece in pieces for item in piece]
        if message is not None:
            args.append(message_json(message))
        return session_result(self._run("reply_end", shard, session_key(sid, shard), args))

    def stop_reply(self, session_id: str, owner: str | None) -> str | None:
        """Ask the running reply to stop: its id, '' when none runs, None when not found."""
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        answer = self._run("reply_stop", shard, session_key(sid, shard), [sid, owner or ""])
        return None if answer is None else str(answer)

    def _locate_stored(self, session_id: str) -> tuple[str, int]:
        """A session a reply was begun in: its id is already the stored one."""
        located = self._locate(session_id)
        if located is None:
            raise ValueError(f"not a session id: {session_id!r}")
        return located
