"""Messages: read a session's messages, post one and get the assistant's reply, or ask again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app

from chatapp import assistant
from chatapp.api.endpoint import endpoint
from chatapp.schemas import (
    message_create_schema,
    message_exchange_schema,
    message_page_schema,
    message_schema,
    message_version_schema,
    messages_query_schema,
    reply_schema,
    reply_started_schema,
    session_schema,
    version_shown_schema,
)
from chatapp.services import chat
from chatapp.storage import Message, get_store
from chatapp.web import sse
from chatapp.web.auth import access, current_principal
from chatapp.web.limits import rate_limited
from chatapp.web.unwritten import store_unwritten, unwritten_id

bp = Blueprint("messages", __name__)


@bp.get("/sessions/<session_id>/messages")
@access("visitor")
@endpoint(query=messages_query_schema, responses={200: message_page_schema}, errors=(404,))
def list_messages(session_id: str, query: dict[str, Any]):
    """A page of messages, oldest first: the newest `limit`, or those before `before`."""
    found = get_store().read_messages(
        session_id, owner=current_principal().owner, limit=query["limit"], before=query.get("before")
    )
    if found is None:
        raise chat.not_found(session_id)
    session, messages, first_index = found
    return message_page_schema.dump(
        {
            "session_id": session_id,
            "message_count": session["message_count"],
            "messages": messages,
            "next_before": first_index if first_index > 0 and messages else None,
        }
    )


def _dumped(events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The exchange's events with their data in the API's shapes."""
    try:
        for event, data in events:
            if event == "user_message":
                yield event, message_schema.dump(data)
            elif event == "done":
                yield (
                    event,
                    {
                        "assistant_message": message_schema.dump(data["assistant_message"]),
                        "session": session_schema.dump(data["session"]),
                    },
                )
            elif isinstance(data, chat.Failed):
                error = sse.error_data(data.error)
                if data.partial is not None:
                    error["assistant_message"] = message_schema.dump(data.partial)
                yield event, error
            else:
                yield event, data
    finally:
        events.close()  # type: ignore[attr-defined]  # a client gone: the reply goes on without it


def _with_user_message(user_message: Message | None, following: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    try:
        if user_message is not None:
            yield "user_message", user_message
        yield from following
    finally:
        following.close()  # type: ignore[attr-defined]


def _stream(job: chat.ReplyJob, user_message: Message | None) -> Response:
    """Follow the job (registered before it starts, so nothing is missed), then start it."""
    frames = sse.frames(_dumped(_with_user_message(user_message, job.follow())))
    job.start()
    return Response(frames, mimetype=sse.EVENT_STREAM, headers=sse.SSE_HEADERS)


def _started(job: chat.ReplyJob, user_message: Message | None) -> tuple[dict[str, Any], int]:
    started = {"session_id": job.session_id, "reply_id": job.reply_id, "user_message": user_message}
    return reply_started_schema.dump(started), 202


def _exchanged(session_id: str, user_message: Message | None, reply: Message) -> tuple[dict[str, Any], int]:
    exchanged = {"session_id": session_id, "user_message": user_message, "assistant_message": reply}
    return message_exchange_schema.dump({**exchanged, "messages": [user_message, reply]}), 201


def _answer(session_id: str, job: chat.ReplyJob, user_message: Message | None) -> Any:
    """Start the job and answer as the request asked: Server-Sent Events, 202 once started
    (``Prefer: respond-async``), or JSON once the reply is stored. Without a ``user_message``
    (a regenerated reply) the JSON holds the reply alone."""
    if sse.wants_stream():
        return _stream(job, user_message)
    if sse.prefers_async():
        return _started(job.start(), user_message)
    reply, _ = job.start().wait()
    if user_message is None:
        return reply_schema.dump({"session_id": session_id, "assistant_message": reply, "messages": [reply]}), 201
    return _exchanged(session_id, user_message, reply)


MODEL_ERROR_TEXT = {
    413: (
        "Request body over 1 MB, or the conversation no longer fits the model's context window "
        "(the user's message is kept; asking again will not help: start a new session)"
    ),
    503: (
        "The session store is unavailable, or the model server is busy (its 429 or 503): `Retry-After` "
        "passes on its wait; the user's message is kept"
    ),
}


@bp.post("/sessions/<session_id>/messages")
@access("visitor")
@rate_limited("messages")
@endpoint(
    body=message_create_schema,
    responses={201: message_exchange_schema, 202: reply_started_schema},
    errors=(403, 404, 409, 413, 502, 503, 504),
    error_text=MODEL_ERROR_TEXT,
    streams=True,
)
def post_message(session_id: str, body: dict[str, Any]):
    """Send a message and get the assistant's reply.

    The user's message is stored first; the reply is stored once, when it ends, with metadata
    naming the model, persona, latency in ms, token usage (when the model reports it) and the
    model's `finish_reason`. A reply the token limit cut (`finish_reason` `length`) is stored
    with `metadata.truncated = true`. A reasoning model's thinking is not part of the reply's
    `content`: it is kept in `metadata.reasoning`.

    A model failure answers 502, a model time-out 504 (silent for CHATAPP_LLM_TIMEOUT, or not
    finished within CHATAPP_LLM_MAX_SECONDS). A reply that fails after some text arrived (the
    stream ends without a finish reason, the server reports an error mid-stream, the
    connection drops, a time-out) keeps that text, stored with `metadata.incomplete = true`
    and `metadata.incomplete_reason` (`no_finish_reason`, `upstream_error`, `connection_lost`,
    `timeout`, `deadline`), never as a finished reply. A busy model server (its 429 or 503)
    answers 503 with its `Retry-After`; a conversation too long for the model's context
    answers 413. The user's message stays in every case, and
    `POST /api/sessions/{session_id}/reply` asks again (after an incomplete reply too).

    With `Accept: text/event-stream` the answer is a stream of Server-Sent Events instead:
    `user_message` (the stored message), then `reasoning` events `{"text": "..."}` while a
    reasoning model thinks, `delta` events `{"text": "..."}` as the model produces the reply,
    then `done` `{"assistant_message": {...}, "session": {...}}`, or `error`
    `{"error": {"code", "name", "message", "retry_after"}, "assistant_message": {...}}`, where
    `retry_after` (seconds) comes with a busy model and `assistant_message` is the stored
    incomplete reply when some text had arrived.

    The reply is a job: it runs to its end, and is stored whole, whether or not the poster
    stays connected; `POST /api/sessions/{session_id}/stop` ends it early (stored with
    `metadata.stopped = true`). One reply runs at a time per session: posting while one runs
    answers 409 naming it (`error.fields.reply_id`) and stores nothing. With
    `Prefer: respond-async` the answer is 202 as soon as the reply has started (the stored
    message and the `reply_id`); follow it on `GET /api/sessions/{session_id}/events`.

    A visitor's first session is not stored until written to: the page names it by a provisional
    id, and a first message posted to that id stores the session under its own id, which the
    answer carries (`session_id`, or the `done` event's `session`).
    """
    principal = current_principal()
    if principal.via_cookie and principal.user_id and session_id == unwritten_id():
        session_id = store_unwritten(principal.user_id)["session_id"]  # a first message stores its session
    owner = principal.owner
    store = get_store()
    if not assistant.is_configured(current_app) and not sse.wants_stream():
        done = chat.offline_exchange(store, session_id, owner, body["content"])
        return _exchanged(session_id, done.user_message, done.reply)
    user_message, job = chat.start_exchange(store, session_id, owner, body["content"])
    return _answer(session_id, job, user_message)


@bp.post("/sessions/<session_id>/reply")
@access("visitor")
@rate_limited("messages")
@endpoint(
    responses={201: reply_schema, 202: reply_started_schema},
    errors=(403, 404, 409, 413, 502, 503, 504),
    error_text=MODEL_ERROR_TEXT,
    streams=True,
)
def retry_reply(session_id: str):
    """Regenerate: a new reply to the last user message (the page's Regenerate and Retry).

    When a reply follows that message (finished, stopped, cut off at the length limit, or
    broken off), the new reply takes its place once stored and the old one is kept as an
    earlier version of it: the message then has `versions` (the others, in order) and
    `version` (where the shown one stands, 0-based), so regenerating twice gives three
    versions, the newest shown; `PUT .../messages/{index}/version` shows another. The model
    reads the messages before the user's, not the old reply. When no reply follows (the model
    failed before any text, or was stopped), the new reply is added after the message. The
    user's message is never stored twice.

    409 when the session has no user message, or while a reply runs (or when the last reply
    changed while this was asked). Answers like `POST /api/sessions/{session_id}/messages`:
    JSON, or (with `Accept: text/event-stream`) the same Server-Sent Events without
    `user_message`, or (with `Prefer: respond-async`) 202 once the reply has started.
    """
    return _answer(session_id, chat.start_retry(get_store(), session_id, current_principal().owner), None)


@bp.put("/sessions/<session_id>/messages/<int:index>")
@access("visitor")
@rate_limited("messages")
@endpoint(
    body=message_create_schema,
    responses={201: message_exchange_schema, 202: reply_started_schema},
    errors=(403, 404, 409, 413, 502, 503, 504),
    error_text=MODEL_ERROR_TEXT,
    streams=True,
)
def edit_message(session_id: str, index: int, body: dict[str, Any]):
    """Edit the last user message and get a new reply to it.

    Only the session's last user message can be edited (`index` is its place, as the messages
    endpoints number them): 409 for any other, 404 past the end. The new text becomes the
    message's newest version; the version it replaces is kept in the message's `versions`
    with the replies that followed it (`replies`), which leave the history: showing that
    version again (`PUT .../messages/{index}/version`) brings them back. The model reads
    the messages before it and the new text. Answers like `POST /api/sessions/{session_id}/messages`
    (JSON, Server-Sent Events, or 202 with `Prefer: respond-async`); 409 while a reply runs.
    """
    user_message, job = chat.start_edit(get_store(), session_id, current_principal().owner, index, body["content"])
    return _answer(session_id, job, user_message)


@bp.put("/sessions/<session_id>/messages/<int:index>/version")
@access("visitor")
@rate_limited("messages")
@endpoint(body=message_version_schema, responses={200: version_shown_schema}, errors=(403, 404, 409))
def show_version(session_id: str, index: int, body: dict[str, Any]):
    """Show another version of a message (a regenerated reply, an edited message).

    `version` is 0-based among all the message's versions (`len(versions) + 1` of them). The
    choice is stored: the history, the page in every tab and what the model reads next are
    the version shown. Showing a user message's version also brings back the replies kept
    with it (the replies after it now are kept with the version left), so the answer lists
    every message from `index` on that changed. 404 past the end or for a version the
    message does not have, 409 while a reply runs or when the messages changed meanwhile;
    a user message older than the newest 500 cannot change versions (409).
    """
    session, changed = chat.show_version(get_store(), session_id, current_principal().owner, index, body["version"])
    shown = {"session_id": session["session_id"], "index": index, "messages": changed}
    return version_shown_schema.dump(shown)
