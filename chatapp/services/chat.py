"""The chat exchange: store the user's message, ask the assistant, store its reply once.

Views call ``post_message`` or ``retry``; both answer a finished ``Exchanged`` (JSON) or an
``Exchange`` to stream. Streams are (event, data) pairs: ``user_message``, ``delta`` per
piece (``reasoning`` per piece of a reasoning model's thinking), then ``done`` or ``error``
(a ``Failed``), framed as SSE by the web layer.

A reply is stored once. One the model finished is stored whole (``finish_reason`` in its
metadata, ``truncated`` when the token limit cut it). One that failed after some text
arrived keeps that text, marked ``incomplete`` with the ``incomplete_reason``, never as a
finished reply; Retry then asks again for the user's message before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import current_app
from werkzeug.exceptions import Conflict, HTTPException, NotFound, ServiceUnavailable

from chatapp import assistant, events
from chatapp.personas import persona_of
from chatapp.storage import Message, Session, SessionStore, StoreUnavailable, make_message

log = logging.getLogger(__name__)

NOT_FOUND = "No session found for '{}'."
NOTHING_TO_RETRY = (
    "The last message is not from the user (or an incomplete reply to it), so there is nothing to retry; "
    "send a new message."
)
RETRY_MARGIN = 4  # incomplete replies a retry looks past (each failed retry may leave one)
STORE_DOWN = "The session store is unavailable; try again shortly."


def not_found(name: str) -> NotFound:
    return NotFound(NOT_FOUND.format(name))


@dataclass(frozen=True)
class Failed:
    """An exchange that ended in ``error``; ``partial`` is the text so far, stored as incomplete."""

    error: HTTPException
    partial: Message | None = None


@dataclass(frozen=True)
class Exchanged:
    """A finished exchange: the stored user message (None for a retry) and the stored reply."""

    user_message: Message | None
    reply: Message


class Exchange:
    """One assistant reply to the last user message of a session: ask, then store it once."""

    def __init__(
        self, store: SessionStore, session: Session, owner: str | None, history: list[Message], content: str
    ) -> None:
        self.store = store
        self.session_id = session["session_id"]
        self.owner = owner
        self.persona = persona_of(session)
        self.reply = assistant.start_reply(current_app, self.persona, history, content)
        self.started = time.monotonic()

    def _store(self, text: str, **extra: Any) -> tuple[Message, Session]:
        """Store the (whole or partial) reply; 404 if the session went away meanwhile."""
        latency_ms = round((time.monotonic() - self.started) * 1000)
        message = make_message("assistant", text, {**self.reply.metadata(self.persona, latency_ms), **extra})
        # The user's message was accepted: its reply is stored whole, quotas or not.
        session = self.store.append_messages(self.session_id, [message], owner=self.owner, limited=False)
        if session is None:
            raise not_found(self.session_id)
        events.emit(events.messages_stored, session_id=self.session_id, count=1)
        return message, session

    def _replied(self, outcome: str) -> None:
        events.emit(
            events.model_replied,
            model=self.reply.model,
            persona=self.persona.id,
            seconds=time.monotonic() - self.started,
            outcome=outcome,
        )

    def _keep_partial(self, text: str, error: HTTPException) -> Message | None:
        """Store the text that arrived before ``error``, marked incomplete; None if there was none."""
        if not text.strip():
            return None
        reason = getattr(error, "reason", "error")
        try:
            return self._store(text, incomplete=True, incomplete_reason=reason)[0]
        except (HTTPException, StoreUnavailable) as exc:  # the model's error is the one to report
            log.warning("partial reply of %s not stored: %s", self.session_id, type(exc).__name__)
            return None

    def whole(self) -> Message:
        """The full reply, stored; a failure raises 502/504 (any text so far stored as incomplete)."""
        pieces: list[str] = []
        try:
            for kind, piece in self.reply:
                if kind == assistant.TEXT:
                    pieces.append(piece)
            if not "".join(pieces).strip():
                raise self.reply.no_text()
        except HTTPException as exc:
            self._replied(getattr(exc, "outcome", "error"))
            self._keep_partial("".join(pieces), exc)
            raise
        finally:
            self.reply.close()
        self._replied("ok")
        return self._store("".join(pieces))[0]

    def stream(self, user_message: Message | None) -> Iterator[tuple[str, Any]]:
        """user_message, then a delta per piece, then done (or error).

        Thinking comes as ``reasoning`` events: the browser shows that the model is at work,
        and proxies see a live connection. It is stored in metadata, not in the text.

        A failure after some text keeps that text, stored as incomplete and sent along with
        the ``error``. A client that goes away (Stop button, closed tab) closes this generator
        at its next yield; what arrived so far is stored with ``interrupted: true``.
        """
        if user_message is not None:
            yield "user_message", user_message
        pieces: list[str] = []
        try:
            for kind, piece in self.reply:
                if kind == assistant.TEXT:
                    pieces.append(piece)
                    yield "delta", {"text": piece}
                elif kind == assistant.REASONING:
                    yield "reasoning", {"text": piece}
            if not "".join(pieces).strip():
                raise self.reply.no_text()
        except HTTPException as exc:
            self.reply.close()  # before waiting on the client: the model's connection is done
            self._replied(getattr(exc, "outcome", "error"))
            yield "error", Failed(exc, self._keep_partial("".join(pieces), exc))
            return
        except GeneratorExit:
            self._replied("interrupted")
            if "".join(pieces).strip():
                try:
                    self._store("".join(pieces), interrupted=True)
                except (HTTPException, StoreUnavailable) as exc:  # nobody is listening any more
                    log.warning("partial reply of %s not stored: %s", self.session_id, type(exc).__name__)
            raise
        finally:
            self.reply.close()
        self._replied("ok")
        try:
            message, session = self._store("".join(pieces))
        except HTTPException as exc:  # deleted while the reply was being written
            yield "error", Failed(exc)
            return
        except StoreUnavailable as exc:  # the headers are gone: say it in the stream, as errors.py would
            log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
            yield "error", Failed(ServiceUnavailable(STORE_DOWN))
            return
        yield "done", {"assistant_message": message, "session": session}


def offline_exchange(store: SessionStore, session_id: str, owner: str | None, content: str) -> Exchanged:
    """No model: the reply is known before asking, so both messages are stored in one round trip."""
    user_message = make_message("user", content)
    reply = assistant.offline_reply()
    session = store.append_messages(session_id, [user_message, reply], owner=owner)
    if session is None:
        raise not_found(session_id)
    events.emit(events.messages_stored, session_id=session_id, count=2)
    events.emit(
        events.model_replied, model=assistant.OFFLINE_MODEL, persona=session["persona"], seconds=0.0, outcome="ok"
    )
    return Exchanged(user_message, reply)


def start_exchange(store: SessionStore, session_id: str, owner: str | None, content: str) -> tuple[Message, Exchange]:
    """Store the user's message and get ready to ask for the reply (nothing sent yet)."""
    user_message = make_message("user", content)
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    found = store.append_and_read(session_id, [user_message], limit, owner=owner)
    if found is None:
        raise not_found(session_id)
    session, recent = found
    events.emit(events.messages_stored, session_id=session_id, count=1)
    return user_message, Exchange(store, session, owner, recent[:-1], content)


def start_retry(store: SessionStore, session_id: str, owner: str | None) -> Exchange:
    """A new reply to the session's last user message (409 otherwise).

    That message must be the last one, or be followed only by replies that broke off
    (``incomplete``): those stay, and the new reply comes after them.
    """
    history = current_app.config["LLM_MAX_HISTORY"]
    found = store.read_messages(session_id, owner=owner, limit=history + 1 + RETRY_MARGIN)
    if found is None:
        raise not_found(session_id)
    session, recent, _ = found
    while recent and recent[-1]["role"] == "assistant" and recent[-1].get("metadata", {}).get("incomplete"):
        recent = recent[:-1]
    if not recent or recent[-1]["role"] != "user":
        raise Conflict(NOTHING_TO_RETRY)
    earlier = recent[:-1][-history:] if history else []
    return Exchange(store, session, owner, earlier, recent[-1]["content"])
