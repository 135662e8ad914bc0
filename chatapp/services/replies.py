"""Replies as jobs: a reply runs to its end on its own thread (a greenlet under gevent),
whoever is connected, and is stored once.

The job reads the model and hands each piece to its local followers (the poster's own
stream) at once; a Stop closes the model's connection, which ends a read waiting on a
silent model. For every other listener, on any worker or host, the worker's ``Supervisor``
publishes the pieces all its running replies produced, together, every FLUSH_SECONDS: one
round trip for all of them, not one per piece (a thousand replies at ten pieces a second
would otherwise be ten thousand round trips a second). Its answer, which also renews the
leases of silent replies, says which replies someone asked to stop. A reply ends as
``done`` (stored whole, or stopped with what it had, marked ``stopped``) or ``error`` (any
text so far kept, marked ``incomplete``); its last pieces go with that end, in order.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.exceptions import Conflict, HTTPException, NotFound, ServiceUnavailable

from chatapp import assistant, events
from chatapp.errors import STORE_DOWN, error_body
from chatapp.personas import Persona
from chatapp.services import versions
from chatapp.services.per_worker import per_worker
from chatapp.storage import Message, Session, SessionStore, StoreUnavailable, get_store, make_message
from chatapp.storage.replies import GONE, STOP

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.05  # how long a piece waits, at most, to be published with the others
HEARTBEAT_SECONDS = 0.3  # how often a silent reply's lease is renewed (and its stop flag read)
STOPPED_EARLY = "Stopped before the assistant wrote anything. Your message is saved; press Retry to ask again."
GONE_TEXT = "The session was deleted while the reply was being written."


@dataclass(frozen=True)
class Failed:
    """A reply that ended in ``error``; ``partial`` is the text so far, stored as incomplete."""

    error: HTTPException
    partial: Message | None = None


def _joined(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pieces of one kind in a row, joined: one event each for the listeners."""
    joined: list[tuple[str, str]] = []
    for name, text in pieces:
        if joined and joined[-1][0] == name:
            joined[-1] = (name, joined[-1][1] + text)
        else:
            joined.append((name, text))
    return joined


class ReplyJob:
    """One reply of a session being produced; ``start()`` it, then ``follow()`` or ``wait()``."""

    def __init__(
        self,
        app: Flask,
        store: SessionStore,
        session_id: str,
        reply_id: str,
        persona: Persona,
        reply: assistant.Reply,
    ) -> None:
        self.app, self.store, self.session_id, self.reply_id = app, store, session_id, reply_id
        self.persona, self.reply = persona, reply
        self.previous: Message | None = None  # the reply this one regenerates: kept as a version of it
        self.started = time.monotonic()
        self.last_progress = self.started
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.outcome: tuple[str, Any] | None = None  # the last event: done or error
        self._followers: list[queue.SimpleQueue[tuple[str, Any]]] = []
        self._text: list[str] = []
        self.supervisor = Supervisor.of(app)

    # --- for the views ---------------------------------------------------------------
    def start(self) -> ReplyJob:
        context = contextvars.copy_context()  # the request's (its id, for the log lines)
        threading.Thread(target=context.run, args=(self._run,), name=f"reply-{self.reply_id}", daemon=True).start()
        return self

    def follow(self) -> Iterator[tuple[str, Any]]:
        """The reply's events as they happen: delta/reasoning, then done or error. Registered
        at once: call before ``start()`` to miss nothing. Closing the iterator (a client
        gone) leaves the job running."""
        mine: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._followers.append(mine)
        return self._following(mine)

    def _following(self, mine: queue.SimpleQueue[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        try:
            while True:
                event, data = mine.get()
                yield event, data
                if event in ("done", "error"):
                    return
        finally:
            self._followers.remove(mine)

    def wait(self) -> tuple[Message, Session]:
        """Wait for the end: the stored reply and session, or the error raised."""
        self.finished.wait()
        assert self.outcome is not None
        event, data = self.outcome
        if event == "error":
            raise data.error
        return data["assistant_message"], data["session"]

    def request_stop(self) -> None:
        self.stop_requested.set()
        self.reply.close()  # ends a read waiting on a silent model; the job then stores what it has

    # --- the job itself --------------------------------------------------------------
    def _emit(self, event: str, data: Any) -> None:
        for follower in list(self._followers):
            follower.put((event, data))

    def _run(self) -> None:
        supervisor = self.supervisor
        supervisor.add(self)
        events.emit_from(self.app, events.live_changed, kind="replies", delta=1)
        try:
            with self.app.app_context():
                self.outcome = self._produce()
        except Exception:  # never leave a follower waiting
            log.exception("reply %s failed", self.reply_id)
            self.outcome = ("error", Failed(ServiceUnavailable(STORE_DOWN)))
        finally:
            supervisor.remove(self)
            events.emit_from(self.app, events.live_changed, kind="replies", delta=-1)
            self._emit(*self.outcome)  # type: ignore[misc]
            self.finished.set()

    def _produce(self) -> tuple[str, Any]:
        failure: HTTPException | None = None
        names = {assistant.TEXT: "delta", assistant.REASONING: "reasoning"}
        try:
            for kind, piece in self.reply:  # a Stop wakes a blocked read by closing the reply
                name = names.get(kind)
                if name is not None:
                    if name == "delta":
                        self._text.append(piece)
                    self._emit(name, {"text": piece})
                    self.supervisor.publish(self, [(name, piece)])
                if self.stop_requested.is_set():
                    break
            else:
                if not "".join(self._text).strip():
                    failure = self.reply.no_text()
        except HTTPException as exc:
            failure = exc
        finally:
            self.reply.close()
        if self.stop_requested.is_set():
            return self._end_stopped()
        if failure is None:
            self._replied("ok")
            return self._end("done", self._message())
        self._replied(getattr(failure, "outcome", "error"))
        partial = None
        if "".join(self._text).strip():
            reason = getattr(failure, "reason", "error")
            partial = self._message(incomplete=True, incomplete_reason=reason)
        return self._end("error", partial, failure)

    def _message(self, **extra: Any) -> Message:
        latency_ms = round((time.monotonic() - self.started) * 1000)
        message = make_message(
            "assistant", "".join(self._text), {**self.reply.metadata(self.persona, latency_ms), **extra}
        )
        return message if self.previous is None else versions.with_new_version(self.previous, message)

    def _end_stopped(self) -> tuple[str, Any]:
        self._replied("stopped")
        if not "".join(self._text).strip():
            return self._end("error", None, Conflict(STOPPED_EARLY), stopped=True)
        return self._end("done", self._message(stopped=True), stopped=True)

    def _end(
        self, outcome: str, message: Message | None, error: HTTPException | None = None, stopped: bool = False
    ) -> tuple[str, Any]:
        """Store the reply (if any text), tell the listeners, and answer the followers' last event."""
        data: dict[str, Any] = {"reply_id": self.reply_id, "assistant_message": message}
        if stopped:
            data["stopped"] = True
        if error is not None:
            data.update(error_body(error))
        last = self.supervisor.take(self)  # pieces not yet published: they go first, with the end
        try:
            session = self.store.end_reply(self.session_id, self.reply_id, outcome, data, message, last)
        except StoreUnavailable as exc:
            log.error("reply %s not stored: %s: %s", self.reply_id, type(exc).__name__, exc)
            return "error", Failed(error or ServiceUnavailable(STORE_DOWN))
        if session is None:  # deleted while the reply was being written
            return "error", Failed(error or NotFound(GONE_TEXT))
        if message is not None:
            events.emit(events.messages_stored, session_id=self.session_id, count=1)
        if outcome == "error":
            return "error", Failed(error or ServiceUnavailable(STORE_DOWN), message)
        return "done", {"assistant_message": message, "session": session}

    def _replied(self, outcome: str) -> None:
        events.emit(
            events.model_replied,
            model=self.reply.model,
            persona=self.persona.id,
            seconds=time.monotonic() - self.started,
            outcome=outcome,
        )


class Supervisor:
    """A worker's running replies: publishes their pieces together, renews the leases of the
    silent ones, and passes Stops on.

    Every FLUSH_SECONDS while replies run, the pieces they produced meanwhile go to Redis in
    one round trip, with a heartbeat for each reply silent for HEARTBEAT_SECONDS. A reply
    that publishes learns of a Stop from that answer; one waiting on a silent model (thinking,
    or slow to start) from its heartbeat. The thread runs only while there are replies.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.jobs: set[ReplyJob] = set()
        self.pending: dict[ReplyJob, list[tuple[str, str]]] = {}
        self.in_flight: set[ReplyJob] = set()
        self.lock = threading.Lock()
        self.flushed = threading.Condition(self.lock)
        self.running = False

    @staticmethod
    def of(app: Flask) -> Supervisor:
        return per_worker(app, "chatapp.replies", Supervisor)

    def running_jobs(self) -> list[ReplyJob]:
        with self.lock:
            return list(self.jobs)

    def add(self, job: ReplyJob) -> None:
        with self.lock:
            self.jobs.add(job)
            if not self.running:
                self.running = True
                threading.Thread(target=self._watch, name="reply-publisher", daemon=True).start()

    def remove(self, job: ReplyJob) -> None:
        with self.lock:
            self.jobs.discard(job)
            self.pending.pop(job, None)

    def publish(self, job: ReplyJob, pieces: list[tuple[str, str]]) -> None:
        """Queue pieces for the next flush."""
        with self.lock:
            self.pending.setdefault(job, []).extend(pieces)

    def take(self, job: ReplyJob) -> list[tuple[str, str]]:
        """The job's pieces not yet published, once none of its are on the way (its end is
        published after them)."""
        with self.lock:
            while job in self.in_flight:
                self.flushed.wait()
            return _joined(self.pending.pop(job, []))

    def _watch(self) -> None:
        store = get_store(self.app)
        while True:
            time.sleep(FLUSH_SECONDS)
            with self.lock:
                if not self.jobs:
                    self.running = False
                    return
                now = time.monotonic()
                batch, self.pending = self.pending, {}
                for job in self.jobs:
                    if job not in batch and now - job.last_progress >= HEARTBEAT_SECONDS:
                        batch[job] = []
                self.in_flight = set(batch)
            try:
                if batch:
                    replies = [(job.session_id, job.reply_id, _joined(pieces)) for job, pieces in batch.items()]
                    answers = store.replies_progress(replies)
                    for job, answer in zip(batch, answers, strict=True):
                        job.last_progress = now
                        if answer in (STOP, GONE):
                            job.request_stop()
            except Exception as exc:  # Redis away (or its client closed): try these again next time
                log.warning("reply pieces not published: %s", type(exc).__name__)
                with self.lock:
                    for job, pieces in batch.items():
                        if job in self.jobs:
                            self.pending[job] = pieces + self.pending.get(job, [])
            finally:
                with self.lock:
                    self.in_flight = set()
                    self.flushed.notify_all()


def drain(app: Flask, seconds: float) -> int:
    """Wait up to ``seconds`` for this worker's running replies to end (a worker shutting
    down: nobody may be connected to wait for them). Answers how many were still running."""
    deadline = time.monotonic() + seconds
    jobs = Supervisor.of(app).running_jobs()
    for job in jobs:
        job.finished.wait(max(0.0, deadline - time.monotonic()))
    return sum(not job.finished.is_set() for job in jobs)
