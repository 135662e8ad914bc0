"""The chat exchange: store the user's message, ask the assistant, store its reply once.

Views call ``post_message`` or ``retry``; both answer a finished ``Exchanged`` (JSON) or an
``Exchange`` to stream. Streams are (event, data) pairs: ``user_message``, ``delta`` per
piece, then ``done`` or ``error`` (an HTTPException), framed as SSE by the web layer.
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
NOTHING_TO_RETRY = "The last message is not from the user, so there is nothing to retry; send a new message."
STORE_DOWN = "The session store is unavailable; try again shortly."


def not_found(name: str) -> NotFound:
    return NotFound(NOT_FOUND.format(name))


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

    def whole(self) -> Message:
        """The full reply, stored; a failure raises 502/504 and stores nothing."""
        try:
            text = "".join(self.reply)
            if not text.strip():
                raise assistant.UpstreamError(f"The language model answered with no text. {assistant.SAVED}")
        except HTTPException as exc:
            self._replied(getattr(exc, "outcome", "error"))
            raise
        finally:
            self.reply.close()
        self._replied("ok")
        return self._store(text)[0]

    def stream(self, user_message: Message | None) -> Iterator[tuple[str, Any]]:
        """user_message, then a delta per piece, then done (or error).

        A client that goes away (Stop button, closed tab) closes this generator at its next
        yield; what arrived so far is stored with ``interrupted: true``.
        """
        if user_message is not None:
            yield "user_message", user_message
        pieces: list[str] = []
        try:
            for piece in self.reply:
                pieces.append(piece)
                yield "delta", {"text": piece}
            if not "".join(pieces).strip():
                raise assistant.UpstreamError(f"The language model answered with no text. {assistant.SAVED}")
        except HTTPException as exc:
            self._replied(getattr(exc, "outcome", "error"))
            yield "error", exc
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
            yield "error", exc
            return
        except StoreUnavailable as exc:  # the headers are gone: say it in the stream, as errors.py would
            log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
            yield "error", ServiceUnavailable(STORE_DOWN)
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
    """A new reply to the session's last message, which must be the user's (409 otherwise)."""
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    found = store.read_messages(session_id, owner=owner, limit=limit)
    if found is None:
        raise not_found(session_id)
    session, recent, _ = found
    if not recent or recent[-1]["role"] != "user":
        raise Conflict(NOTHING_TO_RETRY)
    return Exchange(store, session, owner, recent[:-1], recent[-1]["content"])
