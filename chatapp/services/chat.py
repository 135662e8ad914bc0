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

import json
from dataclasses import dataclass

from flask import current_app
from werkzeug.exceptions import Conflict, NotFound

from chatapp import assistant, events
from chatapp.personas import persona_of
from chatapp.services import versions
from chatapp.services.replies import Failed, ReplyJob
from chatapp.storage import Message, Session, SessionStore, make_message
from chatapp.storage.replies import new_reply_id

NOT_FOUND = "No session found for '{}'."
NOTHING_TO_RETRY = "This session has no message of yours to answer, so there is nothing to retry: send a message."
ONLY_LAST_EDITED = (
    "Only your last message can be edited (it is asked again from there); this is not it, or a reply "
    "is still to come after it."
)
NO_MESSAGE = "This session has no message {}."
TOO_FAR_BACK = (
    "Only a message among the newest 500 can show another version when it is yours (the replies after it "
    "change with it); this one is older."
)
RETRY_MARGIN = 4  # replies a retry looks past to find the user's message (older data may hold several)
FLIP_WINDOW = 500  # how far back a user message's version can be changed (its replies are rewritten)
__all__ = [
    "Exchanged",
    "Failed",
    "ReplyJob",
    "offline_exchange",
    "show_version",
    "start_edit",
    "start_exchange",
    "start_retry",
]


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


def _read_recent(store: SessionStore, session_id: str, owner: str | None) -> tuple[Session, list[str], int]:
    """The newest messages a regenerate or an edit needs (the model's context, the last user
    message and the replies after it), as stored, and the index of the first."""
    limit = current_app.config["LLM_MAX_HISTORY"] + 1 + RETRY_MARGIN
    found = store.read_stored(session_id, owner=owner, limit=limit)
    if found is None:
        raise not_found(session_id)
    return found


def _last_user(recent: list[Message]) -> int | None:
    """The position of the last user message, if only replies follow it."""
    at = len(recent) - 1
    while at >= 0 and recent[at]["role"] == "assistant":
        at -= 1
    return at if at >= 0 else None


def _context(recent: list[Message], at: int) -> list[Message]:
    history = current_app.config["LLM_MAX_HISTORY"]
    return recent[:at][-history:] if history else []


def start_retry(store: SessionStore, session_id: str, owner: str | None) -> ReplyJob:
    """A new reply to the session's last user message (409 when there is none, or while a reply runs).

    When a reply follows that message (finished, stopped, cut off or broken off), the new
    reply takes its place once it is stored, and the old one is kept as an earlier version of
    it (``versions``; the model's context is the messages before the user's). Otherwise the
    new reply is added after the message.
    """
    session, docs, first = _read_recent(store, session_id, owner)
    recent = [json.loads(doc) for doc in docs]
    at = _last_user(recent)
    if at is None:
        raise Conflict(NOTHING_TO_RETRY)
    reply_id = new_reply_id()
    previous = recent[-1] if recent[-1]["role"] == "assistant" else None
    if previous is not None:
        last = first + len(recent) - 1
        begun = store.begin_reply(session["session_id"], reply_id, [], 0, owner, "regenerate", last, [docs[-1]])
    else:
        begun = store.begin_reply(session["session_id"], reply_id, [], 0, owner)
    if begun is None:
        raise not_found(session_id)
    job = _job(store, session, reply_id, _context(recent, at), recent[at]["content"])
    job.previous = previous
    return job


def start_edit(
    store: SessionStore, session_id: str, owner: str | None, index: int, content: str
) -> tuple[Message, ReplyJob]:
    """Edit the session's last user message (at ``index``) and start the reply to the new text.

    The new text is shown as the message's last version; the earlier version keeps the
    replies that followed it (``versions[...].replies``), and they leave the history. 404 for
    an index past the end, 409 for any message but the last user message, or while a reply runs.
    """
    session, docs, first = _read_recent(store, session_id, owner)
    recent = [json.loads(doc) for doc in docs]
    if index >= first + len(recent):
        raise NotFound(NO_MESSAGE.format(index))
    at = _last_user(recent)
    if at is None or first + at != index:
        raise Conflict(ONLY_LAST_EDITED)
    user_message = versions.edited(recent[at], make_message("user", content), recent[at + 1 :])
    reply_id = new_reply_id()
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    begun = store.begin_reply(session["session_id"], reply_id, [user_message], limit, owner, "edit", index, docs[at:])
    if begun is None:
        raise not_found(session_id)
    events.emit(events.messages_stored, session_id=session_id, count=1)
    stored, context = begun
    return user_message, _job(store, stored, reply_id, context[:-1], content)


def show_version(
    store: SessionStore, session_id: str, owner: str | None, index: int, version: int
) -> tuple[Session, list[Message]]:
    """Show version ``version`` of message ``index`` instead of the one shown (the model's
    context from then on). Answers the session and the messages that changed, from ``index``
    on. A user message brings back the replies kept with that version, and so rewrites
    everything after it: only one among the newest FLIP_WINDOW messages can (409 otherwise).
    """
    found = store.read_stored(session_id, owner=owner, limit=FLIP_WINDOW)
    if found is None:
        raise not_found(session_id)
    session, docs, first = found
    if index >= first + len(docs):
        raise NotFound(NO_MESSAGE.format(index))
    if index >= first:
        read = docs[index - first :]
    else:  # older than the window: read just that message
        older = store.read_stored(session_id, owner=owner, limit=1, before=index + 1)
        if older is None:
            raise not_found(session_id)
        read = older[1][:1]
    message = json.loads(read[0])
    total = versions.count(message)
    if version >= total:
        raise NotFound(f"Message {index} has no version {version}: it has {total}, numbered 0 to {total - 1}.")
    if version == versions.shown_at(message):
        return session, [message]
    if message["role"] != "user":
        shown, _ = versions.showing(message, version, [])
        stored = store.replace_messages(session["session_id"], index, read[:1], [shown], owner, whole=False)
        changed = [shown]
    else:
        if index < first:
            raise Conflict(TOO_FAR_BACK)
        shown, replies = versions.showing(message, version, [json.loads(doc) for doc in read[1:]])
        changed = [shown, *replies]
        stored = store.replace_messages(session["session_id"], index, read, changed, owner, whole=True)
    if stored is None:
        raise not_found(session_id)
    return stored, changed
