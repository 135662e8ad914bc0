"""The REST API: the feature guide's endpoints plus canonical /api/sessions resources.

Views parse with a schema, call the store (and the assistant), and dump with a schema.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from marshmallow import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import Conflict, HTTPException, NotFound, ServiceUnavailable

from chatapp import assistant, events
from chatapp.apidoc import build_spec, endpoint
from chatapp.auth import current_principal, new_user_id
from chatapp.personas import Persona, get_personas, persona_of
from chatapp.redis_client import get_store
from chatapp.schemas import (
    clear_status_schema,
    history_schema,
    message_create_schema,
    message_exchange_schema,
    message_page_schema,
    message_schema,
    messages_query_schema,
    persona_list_schema,
    reply_schema,
    session_create_schema,
    session_list_query_schema,
    session_list_schema,
    session_patch_schema,
    session_schema,
    status_schema,
)
from chatapp.storage import make_message

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

NOT_FOUND = "No session found for '{}'."


def _persona(persona_id: str) -> Persona:
    personas = get_personas()
    if persona_id not in personas:
        valid = ", ".join(personas)
        raise ValidationError({"persona": [f"Unknown persona '{persona_id}'. Valid ids: {valid}."]})
    return personas[persona_id]


def _not_found(name: str) -> NotFound:
    return NotFound(NOT_FOUND.format(name))


# --- the feature guide's endpoints ---------------------------------------------------------


@bp.post("/session/create")
@endpoint(body=session_create_schema, responses={201: session_schema})
def create_session(body: dict[str, Any]):
    """Create a session.

    `user_id` may be any text (spaces and emoji included); the session id derived from it
    is URL-safe and unique even for several sessions of one user within a second.
    """
    principal = current_principal()
    persona = _persona(body["persona"])
    user_id = principal.owner or body.get("user_id") or new_user_id()
    session = get_store().create_session(
        user_id=user_id,
        persona=persona.id,
        display_name=body.get("display_name"),
        description=body.get("description"),
        metadata=body["metadata"],
    )
    events.session_created.send(current_app._get_current_object(), session=session)
    return session_schema.dump(session), 201


@bp.get("/sessions")
@endpoint(query=session_list_query_schema, responses={200: session_list_schema})
def list_sessions(query: dict[str, Any]):
    """List sessions, most recent activity first.

    Paged with `limit` and `offset`; `count` is the total that match the filters.
    Expired sessions never appear; archived ones appear only with `archived=true`.
    """
    principal = current_principal()
    user_id = principal.owner or query.get("user_id")
    sessions, total = get_store().list_sessions(
        user_id=user_id,
        persona=query.get("persona"),
        archived=query["archived"],
        offset=query["offset"],
        limit=query["limit"],
    )
    end = query["offset"] + len(sessions)
    return session_list_schema.dump(
        {
            "sessions": sessions,
            "count": total,
            "limit": query["limit"],
            "offset": query["offset"],
            "next_offset": end if end < total else None,
        }
    )


@bp.get("/session/<path:user_id>/history")
@endpoint(responses={200: history_schema}, errors=(404,))
def session_history(user_id: str):
    """Full message history of a session.

    The path segment may be a session id, or a user id meaning that user's most recently
    active session.
    """
    found = get_store().history(user_id, owner=current_principal().owner)
    if found is None:
        raise _not_found(user_id)
    session, messages = found
    return history_schema.dump(
        {
            "user_id": session["user_id"],
            "session_id": session["session_id"],
            "message_count": len(messages),
            "messages": messages,
        }
    )


@bp.delete("/session/<path:user_id>/clear")
@endpoint(responses={200: clear_status_schema}, errors=(404,))
def clear_session(user_id: str):
    """Drop a session's messages and keep the session.

    The path segment may be a session id, or a user id meaning that user's most recently
    active session.
    """
    session = get_store().clear_session(user_id, owner=current_principal().owner)
    if session is None:
        raise _not_found(user_id)
    return clear_status_schema.dump(
        {
            "status": "success",
            "message": f"Session cleared for user {session['user_id']}",
            "session_id": session["session_id"],
        }
    )


# --- canonical resources ------------------------------------------------------------------


@bp.get("/sessions/<session_id>")
@endpoint(responses={200: session_schema}, errors=(404,))
def get_session(session_id: str):
    """One session's details."""
    session = get_store().get_session(session_id, owner=current_principal().owner)
    if session is None:
        raise _not_found(session_id)
    return session_schema.dump(session)


@bp.patch("/sessions/<session_id>")
@endpoint(body=session_patch_schema, responses={200: session_schema}, errors=(404,))
def update_session(session_id: str, body: dict[str, Any]):
    """Rename, describe, archive or unarchive a session.

    Archiving keeps the session forever and hides it from the default list; unarchiving
    restores the sliding expiry. Any change counts as activity.
    """
    if not body:
        raise ValidationError({"_schema": ["Give at least one of display_name, description, archived."]})
    session = get_store().update_session(session_id, body, owner=current_principal().owner)
    if session is None:
        raise _not_found(session_id)
    return session_schema.dump(session)


@bp.delete("/sessions/<session_id>")
@endpoint(responses={200: status_schema}, errors=(404,))
def delete_session(session_id: str):
    """Delete a session and all its messages."""
    if not get_store().delete_session(session_id, owner=current_principal().owner):
        raise _not_found(session_id)
    return status_schema.dump({"status": "success", "message": f"Session {session_id} deleted"})


@bp.get("/sessions/<session_id>/messages")
@endpoint(query=messages_query_schema, responses={200: message_page_schema}, errors=(404,))
def list_messages(session_id: str, query: dict[str, Any]):
    """A page of messages, oldest first: the newest `limit`, or those before `before`."""
    found = get_store().read_messages(
        session_id, owner=current_principal().owner, limit=query["limit"], before=query.get("before")
    )
    if found is None:
        raise _not_found(session_id)
    session, messages, first_index = found
    return message_page_schema.dump(
        {
            "session_id": session_id,
            "message_count": session["message_count"],
            "messages": messages,
            "next_before": first_index if first_index > 0 and messages else None,
        }
    )


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_STREAM = "text/event-stream"


def _wants_stream() -> bool:
    """Accept: text/event-stream asks for Server-Sent Events; anything else gets JSON."""
    best = request.accept_mimetypes.best_match(["application/json", EVENT_STREAM], default="application/json")
    return best == EVENT_STREAM


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def _sse_error(exc: HTTPException) -> str:
    """The JSON error envelope, as an SSE ``error`` event (the status line has long been sent)."""
    return _sse("error", {"error": {"code": exc.code, "name": exc.name, "message": exc.description}})


class _Exchange:
    """One assistant reply to the last user message of a session: ask, then store it once."""

    def __init__(self, session: dict[str, Any], owner: str | None, history: list[dict[str, Any]], content: str) -> None:
        self.app = current_app._get_current_object()
        self.session_id = session["session_id"]
        self.owner = owner
        self.persona = persona_of(session)
        self.reply = assistant.start_reply(self.app, self.persona, history, content)
        self.started = time.monotonic()

    def store(self, text: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Store the (whole or partial) reply; 404 if the session went away meanwhile."""
        latency_ms = round((time.monotonic() - self.started) * 1000)
        message = make_message("assistant", text, {**self.reply.metadata(self.persona, latency_ms), **extra})
        session = get_store().append_messages(self.session_id, [message], owner=self.owner)
        if session is None:
            raise _not_found(self.session_id)
        events.messages_stored.send(self.app, session_id=self.session_id, count=1)
        return message, session

    def replied(self, outcome: str) -> None:
        events.model_replied.send(
            self.app,
            model=self.reply.model,
            persona=self.persona.id,
            seconds=time.monotonic() - self.started,
            outcome=outcome,
        )

    def whole(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON mode: the full reply, stored; a failure raises 502/504 and stores nothing."""
        try:
            text = "".join(self.reply)
            if not text.strip():
                raise assistant.UpstreamError(f"The language model answered with no text. {assistant.SAVED}")
        except HTTPException as exc:
            self.replied(getattr(exc, "outcome", "error"))
            raise
        finally:
            self.reply.close()
        self.replied("ok")
        return self.store(text)

    def stream(self, user_message: dict[str, Any] | None) -> Response:
        """SSE mode: user_message, then a delta per piece, then done (or error).

        A client that goes away (Stop button, closed tab) closes this generator at its next
        write; what arrived so far is stored with ``interrupted: true``.
        """

        def events_() -> Iterator[str]:
            if user_message is not None:
                yield _sse("user_message", message_schema.dump(user_message))
            pieces: list[str] = []
            try:
                for piece in self.reply:
                    pieces.append(piece)
                    yield _sse("delta", {"text": piece})
                if not "".join(pieces).strip():
                    raise assistant.UpstreamError(f"The language model answered with no text. {assistant.SAVED}")
            except HTTPException as exc:
                self.replied(getattr(exc, "outcome", "error"))
                yield _sse_error(exc)
                return
            except GeneratorExit:
                self.replied("interrupted")
                if "".join(pieces).strip():
                    try:
                        self.store("".join(pieces), interrupted=True)
                    except (HTTPException, RedisError) as exc:  # nobody is listening any more
                        log.warning("partial reply of %s not stored: %s", self.session_id, type(exc).__name__)
                raise
            finally:
                self.reply.close()
            self.replied("ok")
            try:
                message, session = self.store("".join(pieces))
            except HTTPException as exc:  # deleted while the reply was being written
                yield _sse_error(exc)
                return
            except RedisError as exc:  # the headers are gone: say it in the stream, as errors.py would
                log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
                yield _sse_error(ServiceUnavailable("The session store is unavailable; try again shortly."))
                return
            yield _sse(
                "done", {"assistant_message": message_schema.dump(message), "session": session_schema.dump(session)}
            )

        return Response(stream_with_context(events_()), mimetype=EVENT_STREAM, headers=SSE_HEADERS)


@bp.post("/sessions/<session_id>/messages")
@endpoint(body=message_create_schema, responses={201: message_exchange_schema}, errors=(404, 502, 504))
def post_message(session_id: str, body: dict[str, Any]):
    """Send a message and get the assistant's reply.

    The user's message is stored first; the reply is stored once, whole, when it ends, with
    metadata naming the model, persona, latency in ms and token usage (when the model reports it).
    A model failure answers 502, a model time-out 504; the user's message stays and no reply is
    stored, so `POST /api/sessions/{session_id}/reply` can ask again.

    With `Accept: text/event-stream` the answer is a stream of Server-Sent Events instead:
    `user_message` (the stored message), then `delta` events `{"text": "..."}` as the model
    produces them, then `done` `{"assistant_message": {...}, "session": {...}}`, or `error`
    `{"error": {"code", "name", "message"}}`. A client that disconnects mid-reply keeps what
    arrived so far: it is stored with `metadata.interrupted = true`.
    """
    owner = current_principal().owner
    user_message = make_message("user", body["content"])
    if not assistant.is_configured(current_app) and not _wants_stream():
        return _offline_exchange(session_id, owner, user_message)
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    found = get_store().append_and_read(session_id, [user_message], limit, owner=owner)
    if found is None:
        raise _not_found(session_id)
    session, recent = found
    events.messages_stored.send(current_app._get_current_object(), session_id=session_id, count=1)
    exchange = _Exchange(session, owner, recent[:-1], user_message["content"])
    if _wants_stream():
        return exchange.stream(user_message)
    reply, _ = exchange.whole()
    return _exchange_answer(session_id, user_message, reply)


def _exchange_answer(session_id: str, user_message: dict[str, Any], reply: dict[str, Any]):
    return message_exchange_schema.dump(
        {
            "session_id": session_id,
            "user_message": user_message,
            "assistant_message": reply,
            "messages": [user_message, reply],
        }
    ), 201


def _offline_exchange(session_id: str, owner: str | None, user_message: dict[str, Any]):
    """No model: the reply is known before asking, so both messages are stored in one round trip."""
    reply = assistant.offline_reply()
    session = get_store().append_messages(session_id, [user_message, reply], owner=owner)
    if session is None:
        raise _not_found(session_id)
    app = current_app._get_current_object()
    events.messages_stored.send(app, session_id=session_id, count=2)
    events.model_replied.send(app, model=assistant.OFFLINE_MODEL, persona=session["persona"], seconds=0.0, outcome="ok")
    return _exchange_answer(session_id, user_message, reply)


@bp.post("/sessions/<session_id>/reply")
@endpoint(responses={201: reply_schema}, errors=(404, 409, 502, 504))
def retry_reply(session_id: str):
    """Ask for a reply to the last user message again (Retry).

    For a session whose last message is from the user, for example after a 502 or 504: the
    message is not stored twice. 409 when the last message is not a user message. Answers like
    `POST /api/sessions/{session_id}/messages`, JSON or (with `Accept: text/event-stream`) the
    same Server-Sent Events without `user_message`.
    """
    owner = current_principal().owner
    limit = current_app.config["LLM_MAX_HISTORY"] + 1
    found = get_store().read_messages(session_id, owner=owner, limit=limit)
    if found is None:
        raise _not_found(session_id)
    session, recent, _ = found
    if not recent or recent[-1]["role"] != "user":
        raise Conflict("The last message is not from the user, so there is nothing to retry; send a new message.")
    exchange = _Exchange(session, owner, recent[:-1], recent[-1]["content"])
    if _wants_stream():
        return exchange.stream(None)
    reply, _ = exchange.whole()
    return reply_schema.dump({"session_id": session_id, "assistant_message": reply, "messages": [reply]}), 201


# --- reference ------------------------------------------------------------------------------


@bp.get("/personas")
@endpoint(responses={200: persona_list_schema}, tags=("personas",))
def list_personas():
    """The personas a session can use (ids, names, descriptions and greetings)."""
    personas = list(get_personas().values())
    return persona_list_schema.dump({"personas": [vars(p) for p in personas], "count": len(personas)})


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI 3 document, generated from its marshmallow schemas."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["openapi"])
