"""Sessions: the feature guide's create, list, history and clear, and the /sessions/{id} resource."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app
from marshmallow import ValidationError

from chatapp import events
from chatapp.api.endpoint import endpoint
from chatapp.errors import QUOTA_TEXT
from chatapp.personas import Persona, get_personas
from chatapp.schemas import (
    bulk_answer_schema,
    bulk_schema,
    clear_status_schema,
    history_query_schema,
    history_schema,
    session_create_schema,
    session_list_query_schema,
    session_list_schema,
    session_patch_schema,
    session_schema,
    status_schema,
)
from chatapp.services.chat import NOT_FOUND, not_found
from chatapp.storage import QuotaExceeded, get_store
from chatapp.web.auth import access, current_principal, new_user_id
from chatapp.web.limits import rate_limited
from chatapp.web.unwritten import stored_alias

bp = Blueprint("sessions", __name__)


def known_persona(persona_id: str) -> Persona:
    """The persona with this id, or 422 naming the valid ones."""
    personas = get_personas()
    if persona_id not in personas:
        valid = ", ".join(personas)
        raise ValidationError({"persona": [f"Unknown persona '{persona_id}'. Valid ids: {valid}."]})
    return personas[persona_id]


# --- the feature guide's endpoints ---------------------------------------------------------


@bp.post("/session/create")
@access("visitor")
@rate_limited("sessions")
@endpoint(body=session_create_schema, responses={201: session_schema}, errors=(403,))
def create_session(body: dict[str, Any]):
    """Create a session.

    `user_id` may be any text (spaces and emoji included); the session id derived from it
    is URL-safe and unique even for several sessions of one user within a second.
    """
    principal = current_principal()
    persona = known_persona(body["persona"])
    user_id = principal.owner or body.get("user_id") or new_user_id()
    session = get_store().create_session(
        user_id=user_id,
        persona=persona.id,
        display_name=body.get("display_name"),
        description=body.get("description"),
        metadata=body["metadata"],
        owner=principal.owner,
    )
    events.emit(events.session_created, session=session)
    return session_schema.dump(session), 201


@bp.get("/sessions")
@access("visitor")
@endpoint(query=session_list_query_schema, responses={200: session_list_schema})
def list_sessions(query: dict[str, Any]):
    """List sessions, pinned first, then most recent activity first.

    Paged with `limit` and `offset`; `count` is the total that match the filters.
    Expired sessions never appear; archived ones appear only with `archived=true`.
    `q` finds sessions by name, title or description.
    """
    principal = current_principal()
    user_id = principal.owner or query.get("user_id")
    scope = {"persona": query.get("persona"), "archived": query["archived"]}
    scope |= {"offset": query["offset"], "limit": query["limit"]}
    if "q" in query:
        page = get_store().search_page(user_id, query["q"], **scope)
    else:
        page = get_store().list_page(user_id=user_id, **scope)
    end = query["offset"] + len(page.summaries)
    rest = {"count": page.total, "limit": query["limit"], "offset": query["offset"]}
    rest["next_offset"] = end if end < page.total else None
    # The store keeps each session's summary as the JSON this schema dumps (a test holds
    # them equal), so a page is sent on as stored instead of decoded and dumped again.
    body = '{"sessions":[' + ",".join(page.summaries) + "]," + json.dumps(rest, separators=(",", ":"))[1:]
    return current_app.response_class(body + "\n", mimetype="application/json")


@bp.get("/session/<path:user_id>/history")
@access("visitor")
@endpoint(query=history_query_schema, responses={200: history_schema}, errors=(404,))
def session_history(user_id: str, query: dict[str, Any]):
    """Message history of a session, newest page first.

    The path segment may be a session id, or a user id meaning that user's most recently
    active session. Answers the newest 200 messages (or `limit`), oldest first; when the
    session holds more, `next_before` pages back to the older ones.
    """
    store = get_store()
    found = store.history(user_id, current_principal().owner, query["limit"], query.get("before"))
    if found is None:
        raise not_found(user_id)
    session, messages, first_index = found
    return history_schema.dump(
        {
            "user_id": session["user_id"],
            "session_id": session["session_id"],
            "message_count": session["message_count"],
            "messages": messages,
            "next_before": first_index if first_index > 0 and messages else None,
        }
    )


@bp.delete("/session/<path:user_id>/clear")
@access("visitor")
@endpoint(responses={200: clear_status_schema}, errors=(404,))
def clear_session(user_id: str):
    """Drop a session's messages and keep the session.

    The path segment may be a session id, or a user id meaning that user's most recently
    active session.
    """
    session = get_store().clear_session(user_id, owner=current_principal().owner)
    if session is None:
        raise not_found(user_id)
    return clear_status_schema.dump(
        {
            "status": "success",
            "message": f"Session cleared for user {session['user_id']}",
            "session_id": session["session_id"],
        }
    )


# --- the session resource -----------------------------------------------------------------


@bp.get("/sessions/<session_id>")
@access("visitor")
@endpoint(responses={200: session_schema}, errors=(404,))
def get_session(session_id: str):
    """One session's details."""
    session = get_store().get_session(session_id, owner=current_principal().owner)
    if session is None:
        raise not_found(session_id)
    return session_schema.dump(session)


@bp.patch("/sessions/<session_id>")
@access("visitor")
@endpoint(body=session_patch_schema, responses={200: session_schema}, errors=(403, 404))
def update_session(session_id: str, body: dict[str, Any]):
    """Rename, describe, archive or pin a session, or undo either.

    Archiving keeps the session forever and hides it from the default list; pinning keeps
    it forever and lists it first. Undoing the last of them restores the sliding expiry.
    Any change counts as activity.
    """
    if not body:
        raise ValidationError({"_schema": ["Give at least one of display_name, description, archived, pinned."]})
    session = get_store().update_session(session_id, body, owner=current_principal().owner)
    if session is None:
        raise not_found(session_id)
    return session_schema.dump(session)


@bp.delete("/sessions/<session_id>")
@access("visitor")
@endpoint(responses={200: status_schema}, errors=(404,))
def delete_session(session_id: str):
    """Delete a session and all its messages."""
    if not get_store().delete_session(session_id, owner=current_principal().owner):
        raise not_found(session_id)
    return status_schema.dump({"status": "success", "message": f"Session {session_id} deleted"})


@bp.route("/sessions/bulk", methods=["OPTIONS"], provide_automatic_options=False)
@access("public")
def bulk_options() -> Response:
    """What /sessions/bulk allows: only its own methods (Werkzeug's automatic answer would add
    those of /sessions/<session_id>, which the path matches too)."""
    return Response(status=200, headers={"Allow": "OPTIONS, POST"})


@bp.post("/sessions/bulk", provide_automatic_options=False)
@access("visitor")
@rate_limited("sessions")
@endpoint(body=bulk_schema, responses={200: bulk_answer_schema})
def bulk_sessions(body: dict[str, Any]):
    """Archive, unarchive, pin, unpin or delete several sessions at once.

    One request, one round trip to the store; each session changes atomically on its own, so
    one that is refused (a quota) or not found leaves the others done. `results` answers per
    session, in order: 200 with the session as it now is (null when deleted), 404 for a
    session that is not found or not yours (nothing changes for it), 403 when a quota refused it.
    """
    ids = body["session_ids"]
    answers = get_store().bulk(body["action"], [stored_alias(sid) for sid in ids], owner=current_principal().owner)
    results = [_bulk_result(sid, answer) for sid, answer in zip(ids, answers, strict=True)]
    done = sum(1 for result in results if result["status"] == 200)
    return bulk_answer_schema.dump({"action": body["action"], "results": results, "done": done})


def _bulk_result(session_id: str, answer: Any) -> dict[str, Any]:
    if answer is None:
        return {"session_id": session_id, "status": 404, "session": None, "error": NOT_FOUND.format(session_id)}
    if isinstance(answer, QuotaExceeded):
        message = "Quota reached: " + QUOTA_TEXT.get(answer.name, "{limit}").format(limit=f"{answer.limit:,}")
        return {"session_id": session_id, "status": 403, "session": None, "error": message}
    if isinstance(answer, Exception):
        raise answer
    return {"session_id": session_id, "status": 200, "session": None if answer is True else answer, "error": None}
