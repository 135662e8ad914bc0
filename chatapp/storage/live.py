"""Reading a session's live events: where a new listener starts, and what came after.

Each session has a bounded Redis Stream (``P e:<sid>``: ~1,000 events, kept 15 minutes
after the last, for listeners that reconnect; the history is the message list) that the
write scripts add to in the same step as the write: stored messages, a reply's start,
pieces and end, and changes to the session. A stream's entry ids are the events' ids, so a
client that reconnects with ``Last-Event-ID`` resumes from exactly there. All of a
session's keys share its shard's hash tag, so this works on Redis Cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from chatapp.storage.commands import ScriptedStore
from chatapp.storage.keys import events_key, reply_key, session_key, wake_key

EVENT_ID_ZERO = "0-0"  # before any event


@dataclass(frozen=True)
class Event:
    """One event of a session's stream: its id, kind and data (already in the API's shapes)."""

    id: str
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Joined:
    """Where a listener of a session starts: the stream's newest and oldest event ids, and
    the running reply's id and text so far (reply_id None when no reply runs), and which
    message it replaces (a regenerated reply)."""

    session_id: str
    shard: int
    newest: str
    oldest: str | None
    reply_id: str | None
    text: str
    started_at: str | None = None
    replaces: int | None = None  # the index of the message a regenerated reply will replace


def event_id_key(event_id: str) -> tuple[int, int]:
    """A stream id as numbers, for ordering ('5-10' comes after '5-9')."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def is_event_id(value: str) -> bool:
    ms, dash, seq = value.partition("-")
    return bool(dash) and ms.isdigit() and seq.isdigit() and len(ms) <= 20 and len(seq) <= 20


def decode(event_id: str, fields: dict[str, str]) -> Event:
    """A stream entry as an Event: ``e`` the kind, ``d`` its data, ``s`` the session's summary."""
    data = json.loads(fields.get("d") or "{}")
    if not isinstance(data, dict):  # a stored message is an object; anything else is wrapped
        data = {"value": data}
    if "s" in fields:
        data["session"] = json.loads(fields["s"])
    return Event(event_id, fields.get("e", "message"), data)


class LiveStore(ScriptedStore):
    """Where listeners start, and one read over many sessions' streams of one shard."""

    def join_events(self, session_id: str, owner: str | None) -> Joined | None:
        located = self._locate(session_id)
        if located is None:
            return None
        sid, shard = located
        found = self._run("live_join", shard, session_key(sid, shard), [sid, owner or ""])
        if not found:
            return None
        reply_id, text, newest, oldest, started, replaces = found
        return Joined(
            sid,
            shard,
            str(newest),
            str(oldest) or None,
            str(reply_id) or None,
            str(text),
            str(started) or None,
            int(replaces) if str(replaces) else None,
        )

    def running_reply(self, session_id: str, shard: int) -> str | None:
        """The id of the session's running reply (a stored session id and its shard), if any."""
        return cast(str | None, self.redis.hget(reply_key(session_id, shard), "id"))

    def stream_of(self, session_id: str, shard: int) -> str:
        return events_key(session_id, shard)

    def read_events(
        self, positions: dict[str, str], block_ms: int | None, count: int = 500
    ) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """New entries of these streams (all in one shard), after each one's position: the
        raw (stream, entries) of an XREAD, waiting up to ``block_ms`` for one (None: not)."""
        found = self.redis.xread(cast(Any, positions), count=count, block=block_ms)
        return cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], found or [])

    def wake(self, shard: int, listener: str) -> None:
        """Make ``listener``'s blocked read in ``shard`` return (it has a stream to add)."""
        key = wake_key(shard, listener)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(key, {"w": "1"}, maxlen=1, approximate=False)
        pipe.pexpire(key, 60_000)
        pipe.execute()

    def wake_stream(self, shard: int, listener: str) -> str:
        return wake_key(shard, listener)
