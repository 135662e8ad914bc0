"""A worker's listeners of sessions' live streams, fed by one reader per shard.

A listener (one open ``/events`` connection) holds no Redis connection of its own: the
worker reads every stream its listeners follow with one blocking XREAD per shard (on a
single server, one for all), from a connection of the shared pool, and hands each new
event to the listeners of that stream. A listener that joins a stream the reader is not
yet following, or that must be sent events the reader is already past (it resumes from
an older ``Last-Event-ID``), wakes the reader up by adding to the worker's wake stream.

Each listener keeps the id of the last event it was given and takes only later ones, so
a reader that goes back for one listener repeats nothing to the others.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time

from flask import Flask

from chatapp.services.per_worker import per_worker
from chatapp.storage import SessionStore, StoreUnavailable, get_store, store_kind
from chatapp.storage.live import EVENT_ID_ZERO, Event, Joined, decode, event_id_key

log = logging.getLogger(__name__)

BATCH = 500  # events read from one stream in one go, at most
RETRY_SECONDS = 0.5  # a reader whose Redis did not answer tries again after this


class Listener:
    """One subscription: the events of one stream after ``last``, in ``events``."""

    def __init__(self, stream: str, after: str) -> None:
        self.stream = stream
        self.last = event_id_key(after)
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def offer(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        for event_id, fields in entries:
            key = event_id_key(event_id)
            if key > self.last:
                self.last = key
                self.events.put(decode(event_id, fields))


class _Reader:
    """The streams of one shard (or of a whole single server) that this worker's listeners follow."""

    def __init__(self, hub: Hub, shard: int) -> None:
        self.hub, self.shard = hub, shard
        self.listeners: dict[str, set[Listener]] = {}
        self.positions: dict[str, str] = {}  # stream -> the id the next read starts after
        self.wake_stream = hub.store().wake_stream(shard, hub.name)
        self.wake_after = EVENT_ID_ZERO
        self.lock = threading.Lock()
        self.running = False

    def add(self, listener: Listener, after: str) -> bool:
        """Follow the listener's stream from ``after``; True when the running read must be woken."""
        with self.lock:
            self.listeners.setdefault(listener.stream, set()).add(listener)
            position = self.positions.get(listener.stream)
            moved = position is None or event_id_key(after) < event_id_key(position)
            if moved:
                self.positions[listener.stream] = after
            if not self.running:
                self.running = True
                threading.Thread(target=self._run, name=f"live-reader-{self.shard}", daemon=True).start()
                return False
            return moved

    def remove(self, listener: Listener) -> None:
        with self.lock:
            followers = self.listeners.get(listener.stream)
            if followers is not None:
                followers.discard(listener)
                if not followers:
                    del self.listeners[listener.stream]
                    self.positions.pop(listener.stream, None)

    def _run(self) -> None:
        store = self.hub.store()
        while True:
            with self.lock:
                if not self.listeners:
                    self.running = False
                    return
                asked = dict(self.positions)
            try:
                found = store.read_events({self.wake_stream: self.wake_after, **asked}, self.hub.block_ms, BATCH)
            except Exception as exc:  # Redis away (or its client closed): the listeners wait, kept alive
                log.warning("live reader of shard %s: %s", self.shard, type(exc).__name__)
                time.sleep(RETRY_SECONDS)
                continue
            for stream, entries in found:
                if not entries:
                    continue
                with self.lock:
                    if stream == self.wake_stream:
                        self.wake_after = entries[-1][0]
                        continue
                    if self.positions.get(stream) == asked.get(stream):  # not sent back meanwhile
                        self.positions[stream] = entries[-1][0]
                    followers = list(self.listeners.get(stream, ()))
                for listener in followers:
                    listener.offer(entries)


class Hub:
    """This worker's readers, one per shard on a cluster (its keys live in one slot), else one."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.by_shard = store_kind(app) == "cluster"
        # A blocked read must end before the connection's own time-out does.
        self.block_ms = max(100, int(float(app.config["REDIS_TIMEOUT"]) * 1000 * 0.6))
        self.readers: dict[int, _Reader] = {}
        self.lock = threading.Lock()

    @staticmethod
    def of(app: Flask) -> Hub:
        return per_worker(app, "chatapp.live", Hub)

    def store(self) -> SessionStore:
        return get_store(self.app)

    def _reader(self, shard: int) -> _Reader:
        group = shard if self.by_shard else 0
        with self.lock:
            if group not in self.readers:
                self.readers[group] = _Reader(self, group)
            return self.readers[group]

    def listen(self, joined: Joined, after: str) -> Listener:
        """A listener of the joined session's stream, given every event after ``after``."""
        stream = self.store().stream_of(joined.session_id, joined.shard)
        listener = Listener(stream, after)
        reader = self._reader(joined.shard)
        if reader.add(listener, after):
            try:
                self.store().wake(reader.shard, self.name)
            except StoreUnavailable as exc:  # the read ends by itself within block_ms
                log.warning("live reader not woken: %s", type(exc).__name__)
        return listener

    def leave(self, listener: Listener, shard: int) -> None:
        self._reader(shard).remove(listener)
