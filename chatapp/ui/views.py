"""The web page: header, chat, and the New Session and Sessions modals.

Server-rendered first (works without JavaScript: forms post and redirect); the scripts in
static/js/ then take over with the JSON API so creating, switching and sending need no page load.
The visitor's current session is remembered in the signed session cookie. A page view stores
nothing: a visitor's first session stays in the cookie until it is written to (``unwritten``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from marshmallow import ValidationError

from chatapp import assistant, events
from chatapp.errors import answers_json
from chatapp.personas import Persona, get_personas, persona_of
from chatapp.rendering import render_markdown
from chatapp.schemas import session_create_schema, session_schema
from chatapp.services.chat import not_found
from chatapp.storage import StoreUnavailable, get_store
from chatapp.web.auth import access, csrf, ensure_visitor
from chatapp.web.limits import rate_limited
from chatapp.web.unwritten import (
    CURRENT,
    listed_with_unwritten,
    store_unwritten,
    stored_alias,
    unwritten_id,
    unwritten_session,
)

log = logging.getLogger(__name__)

bp = Blueprint("ui", __name__)
bp.add_app_template_filter(render_markdown, "markdown")  # a message's text as the API's `html` shows it

PAGE = 100  # the newest messages the page shows; older ones load on demand
STORE_DOWN = "The session store is unavailable right now, so chats cannot be loaded or saved. Try again shortly."


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _page(status: int = 200, **context: Any):
    """Render index.html with everything it needs; missing parts render as empty."""
    context.setdefault("current", None)
    context.setdefault("messages", [])
    context.setdefault("sessions", [])
    context.setdefault("form", {"display_name": "", "description": "", "persona": "default"})
    context.setdefault("form_errors", {})
    context.setdefault("store_error", None)
    context.setdefault("unwritten", unwritten_id())
    context.setdefault("groups", _groups(context["sessions"]))
    persona = persona_of(context["current"]) if context["current"] else get_personas()["default"]
    return render_template(
        "index.html",
        personas=list(get_personas().values()),
        personas_by_id=get_personas(),
        persona=persona,
        assistant_state="online" if assistant.is_configured(current_app) else "offline",
        session_timeout=current_app.config["SESSION_TIMEOUT"],
        **context,
    ), status


def _groups(sessions: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The Sessions list's headings and rows in order: Pinned, then by last activity (UTC days;
    the script regroups them in the visitor's own time zone)."""
    today = datetime.now(UTC).date()

    def label(s: dict[str, Any]) -> str:
        if s.get("pinned"):
            return "Pinned"
        days = (today - datetime.fromisoformat(s["last_activity"]).date()).days
        return "Today" if days <= 0 else "Yesterday" if days == 1 else "Previous 7 days" if days <= 7 else "Older"

    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for s in sessions:
        name = label(s)
        if not groups or groups[-1][0] != name:
            groups.append((name, []))
        groups[-1][1].append(s)
    return groups


def _create(user_id: str, persona_id: str, display_name: str | None = None, description: str | None = None):
    created = get_store().create_session(
        user_id=user_id, persona=persona_id, display_name=display_name, description=description, owner=user_id
    )
    events.emit(events.session_created, session=created)
    session[CURRENT] = created["session_id"]
    return created


Shown = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


def _current_session(user_id: str, asked: str | None = None) -> Shown | None:
    """The session to show, its messages, and the visitor's session list for the Sessions
    modal. ``asked`` (a session's URL) names it: None when it is not the visitor's. Else the
    remembered one, the most recent, or a new one."""
    store = get_store()
    wanted = asked or session.get(CURRENT)
    found = None
    if isinstance(wanted, str) and wanted and wanted != unwritten_id():
        found = store.read_messages(stored_alias(wanted), owner=user_id, limit=PAGE)
    sessions, _ = store.list_sessions(user_id=user_id, limit=50)
    if found is None and asked is not None and asked != unwritten_id():
        return None
    if found is None and sessions and wanted != unwritten_id():  # (unwritten: not stored, see below)
        found = store.read_messages(sessions[0]["session_id"], owner=user_id, limit=PAGE)
    if found is None:  # first visit, everything expired, or the unwritten session asked for
        return _show_unwritten(user_id, sessions)
    current, messages, _ = found
    session[CURRENT] = current["session_id"]
    return current, messages, listed_with_unwritten(user_id, sessions)


def _show_unwritten(user_id: str, stored: list[dict[str, Any]]) -> Shown:
    """The default persona's greeting in a session kept in the cookie: stored once written to."""
    pending = unwritten_session(user_id, create=True)
    assert pending is not None
    session[CURRENT] = pending["session_id"]
    return pending, [], [*stored, pending]


def _show(user_id: str, asked: str | None = None):
    """The chat page with the asked (or remembered) session open; 404 in the app's frame when
    the asked one is not the visitor's, whether it never existed, expired or is someone else's."""
    try:
        shown = _current_session(user_id, asked)
    except StoreUnavailable as exc:
        log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
        return _page(503, user_id=user_id, store_error=STORE_DOWN)
    if shown is None:
        return render_template("missing.html", user_id=user_id), 404
    current, messages, sessions = shown
    return _page(user_id=user_id, current=current, messages=messages, sessions=sessions)


@bp.get("/")
@access("public")  # the first view makes the browser a visitor
def index():
    """The chat page for this browser's visitor, with the session it used last."""
    user_id = ensure_visitor()
    asked = request.args.get("session")
    if asked:  # the address of a session used to be /?session=<id>
        return redirect(url_for("ui.session_page", session_id=asked), code=302)
    return _show(user_id)


@bp.get("/sessions/<session_id>")
@access("public")
def session_page(session_id: str):
    """A session's own address: the chat page with it open (and remembered as the current one)."""
    return _show(ensure_visitor(), session_id)


def _parse_form() -> dict[str, Any]:
    """The New Session form, validated like the API's create body."""
    display_name = (request.form.get("display_name") or "").strip() or None
    description = (request.form.get("description") or "").strip() or None
    persona_id = (request.form.get("persona") or "default").strip()
    body = session_create_schema.load({"display_name": display_name, "description": description, "persona": persona_id})
    if body["persona"] not in get_personas():
        raise ValidationError({"persona": ["Choose one of the listed personas."]})
    return body


def _persona_json(persona: Persona) -> dict[str, str]:
    return {"id": persona.id, "name": persona.name, "description": persona.description, "greeting": persona.greeting}


@bp.post("/sessions")
@access("public")
@rate_limited("sessions")
def create_session():
    """The New Session form: redirect back to the chat, or JSON for fetch()."""
    user_id = ensure_visitor()
    csrf.protect()
    try:
        body = _parse_form()
    except ValidationError as exc:
        if _wants_json():
            raise
        errors = {k: " ".join(map(str, v)) for k, v in exc.normalized_messages().items()}
        form = {k: request.form.get(k, "") for k in ("display_name", "description", "persona")}
        try:
            shown = _current_session(user_id)
        except StoreUnavailable:
            return _page(503, user_id=user_id, store_error=STORE_DOWN, form=form, form_errors=errors)
        assert shown is not None
        current, messages, sessions = shown
        return _page(
            422, user_id=user_id, current=current, messages=messages, sessions=sessions, form=form, form_errors=errors
        )
    try:
        created = _create(user_id, body["persona"], body.get("display_name"), body.get("description"))
    except StoreUnavailable as exc:
        if _wants_json():
            raise
        log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
        form = {k: request.form.get(k, "") for k in ("display_name", "description")} | {"persona": body["persona"]}
        return _page(
            503,
            user_id=user_id,
            store_error=STORE_DOWN,
            form=form,
            form_errors={"_schema": "The session could not be created: " + STORE_DOWN},
        )
    if _wants_json():
        return jsonify(session=session_schema.dump(created), persona=_persona_json(persona_of(created))), 201
    return redirect(url_for("ui.session_page", session_id=created["session_id"]), code=303)


@bp.post("/sessions/<session_id>/switch")
@access("public")
def switch_session(session_id: str):
    """Make a session the current one, so a reload shows it again."""
    user_id = ensure_visitor()
    csrf.protect()
    if session_id == unwritten_id():
        found = unwritten_session(user_id)
    else:
        session_id = stored_alias(session_id)
        found = get_store().get_session(session_id, owner=user_id)
    if found is None:
        raise not_found(session_id)
    session[CURRENT] = session_id
    if _wants_json():
        return jsonify(session=session_schema.dump(found), persona=_persona_json(persona_of(found)))
    return redirect(url_for("ui.session_page", session_id=session_id), code=303)


@bp.post("/sessions/<session_id>/start")
@access("public")
@rate_limited("sessions")
@answers_json
def start_session(session_id: str):
    """Store the visitor's unwritten session: the script calls this before it creates another
    session or lists them (a first message stores it by itself).

    201 with the stored session, which has an id of its own; the unwritten id stays a name for
    it in this browser (another tab may still show it). A session that is stored already
    answers 200, so the call is safe to repeat.
    """
    user_id = ensure_visitor()
    csrf.protect()
    if session_id == unwritten_id():
        created = store_unwritten(user_id)
        return jsonify(session=session_schema.dump(created), persona=_persona_json(persona_of(created))), 201
    found = get_store().get_session(stored_alias(session_id), owner=user_id)
    if found is None:
        raise not_found(session_id)
    return jsonify(session=session_schema.dump(found), persona=_persona_json(persona_of(found)))
