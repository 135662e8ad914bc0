"""The REST API: the feature guide's endpoints plus canonical /api/sessions resources.

Views parse with a schema, call the store (and the assistant), and dump with a schema.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import NotFound

from chatapp import assistant, events
from chatapp.apidoc import build_spec, endpoint
from chatapp.auth import current_principal, new_user_id
from chatapp.personas import Persona, get_personas
from chatapp.redis_client import get_store
from chatapp.schemas import (
    clear_status_schema,
    history_schema,
    message_create_schema,
    message_exchange_schema,
    message_page_schema,
    messages_query_schema,
    persona_list_schema,
    session_create_schema,
    session_list_query_schema,
    session_list_schema,
    session_patch_schema,
    session_schema,
    status_schema,
)
from chatapp.storage import make_message

bp = Blueprint("api", __name__, url_prefix="/api")

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
    return session_list_schema.dump({
        "sessions": sessions,
        "count": total,
        "limit": query["limit"],
        "offset": query["offset"],
        "next_offset": end if end < total else None,
    })


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
    return history_schema.dump({
        "user_id": session["user_id"],
        "session_id": session["session_id"],
        "message_count": len(messages),
        "messages": messages,
    })


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
    return clear_status_schema.dump({
        "status": "success",
        "message": f"Session cleared for user {session['user_id']}",
        "session_id": session["session_id"],
    })


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
    return message_page_schema.dump({
        "session_id": session_id,
        "message_count": session["message_count"],
        "messages": messages,
        "next_before": first_index if first_index > 0 and messages else None,
    })


@bp.post("/sessions/<session_id>/messages")
@endpoint(body=message_create_schema, responses={201: message_exchange_schema}, errors=(404,))
def post_message(session_id: str, body: dict[str, Any]):
    """Send a message and get the assistant's reply.

    The user's message is stored first; the reply is stored once it is complete.
    """
    owner = current_principal().owner
    store = get_store()
    user_message = make_message("user", body["content"])
    session = store.append_messages(session_id, [user_message], owner=owner)
    if session is None:
        raise _not_found(session_id)
    persona = get_personas().get(session["persona"]) or get_personas()["default"]
    reply = assistant.offline_reply(persona)
    events.messages_stored.send(current_app._get_current_object(), session_id=session_id, count=1)
    if store.append_messages(session_id, [reply], owner=owner) is None:
        raise _not_found(session_id)  # deleted while the reply was being written
    events.messages_stored.send(current_app._get_current_object(), session_id=session_id, count=1)
    return message_exchange_schema.dump({
        "session_id": session_id,
        "user_message": user_message,
        "assistant_message": reply,
        "messages": [user_message, reply],
    }), 201


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
