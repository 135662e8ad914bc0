"""The chat exchange: store the user's message, start the reply that answers it.

Views call ``start_exchange`` (a message) or ``start_retry`` (ask again); both claim the
session's one running reply and answer a ``ReplyJob`` (chatapp.services.replies) that runs
to its end whoever stays connected: the view follows it (SSE) or waits for it (JSON). With
no model configured, ``offline_exchange`` stores the message and the offline notice at once.

A reply is stored once. One the model finished is stored whole (``finish_reason`` in its
metadata, ``truncated`` when the token limit cut it). One that failed after some text
arrived keeps that text, marked ``incomplete`` with the ``incomplete_reason``, never as a
finished reply; Retry then asks again for the user's message before it. A stopped one keeps
its text marked ``stopped``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from werkzeug.exceptions import Conflict, NotFound

from chatapp import assistant, events
from chatapp.personas import persona_of
from chatapp.services.replies import Failed, ReplyJob
from chatapp.storage import Message, Session, SessionStore, make_message
from chatapp.storage.replies import new_reply_id

NOT_FOUND = "No session found for '{}'."
NOTHING_TO_RETRY = (
    "The last message is not from the user (or an incomplete reply to it), so there is nothing to retry; "
    "send a new message."
)
RETRY_MARGIN = 4  # incomplete replies a retry looks past (each failed retry may leave one)
__all__ = ["Exchanged", "Failed", "ReplyJob", "offline_exchange", "start_exchange", "start_retry"]


def not_found(name: str) -> NotFound:
    return NotFound(NOT_FOUND.format(name))


@dataclass(frozen=True)
class Exchanged:
    """A finished exchange: the stored user message (None for a retry) and the stored reply."""

    user_message: Message | None
    reply: Message


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


def _job(store: SessionStore, session: Session, reply_id: str, history: list[Message], content: str) -> ReplyJob:
    persona = persona_of(session)
    reply = assistant.start_reply(current_app, persona, history, content)
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the job outlives the request
    return ReplyJob(app, store, session["session_id"], reply_id, persona, reply)


def start_exchange(store: SessionStore, session_id: str, owner: str | None, content: str) -> tuple[Message, ReplyJob]:
    """Store the user's message and claim the session's reply, in one step (409 while another
    reply runs): the job is ready to ``start()``."""
    user_message = make_message("user", content)
    reply_id = new_reply_id()
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    found = store.begin_reply(session_id, reply_id, [user_message], limit, owner)
    if found is None:
        raise not_found(session_id)
    session, recent = found
    events.emit(events.messages_stored, session_id=session_id, count=1)
    return user_message, _job(store, session, reply_id, recent[:-1], content)


def start_retry(store: SessionStore, session_id: str, owner: str | None) -> ReplyJob:
    """A new reply to the session's last user message (409 otherwise, or while a reply runs).

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
    reply_id = new_reply_id()
    if store.begin_reply(session["session_id"], reply_id, [], 0, owner) is None:
        raise not_found(session_id)
    return _job(store, session, reply_id, earlier, recent[-1]["content"])
