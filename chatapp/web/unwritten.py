"""A visitor's first session, kept in its signed cookie until the visitor writes to it.

A page view stores nothing: a new visitor (or one whose sessions all expired) is shown the
default persona's greeting in a session that exists only in its cookie, with an id of the
usual shape, listed and switchable like any other. It is stored, under a new id, the first time
the visitor writes to it: its first message (``POST /api/sessions/<id>/messages`` with the
unwritten id), or ``POST /sessions/<id>/start``, which the page's script calls before creating
another session or listing sessions. So a flood of page views, with or without cookies (an
``<img src>`` on another site), costs no storage at all.

The browser may go on using the old id for a while (a tab that has not heard the new one):
the API reads it as the stored one (``stored_alias``, applied to every ``session_id`` in
``/api/`` URLs), from the cookie, so only that visitor's own browser can use it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app, session

from chatapp import events
from chatapp.storage import get_store

CURRENT = "current"  # cookie key: the session the page shows
UNWRITTEN = "unwritten"  # cookie key: [session id, created at] of the session not stored yet
WRITTEN = "written"  # cookie key: [its old id, its stored id] once stored (for other open tabs)
ID_PREFIX = "session_unwritten_"  # stored ids are session_<user slug>_<seconds>_<hex>: never this


def _now() -> datetime:
    return datetime.now(UTC)


def unwritten_id() -> str | None:
    held = session.get(UNWRITTEN)
    if isinstance(held, list) and len(held) == 2 and all(isinstance(part, str) for part in held):
        return held[0]
    return None


def unwritten_session(user_id: str, create: bool = False) -> dict[str, Any] | None:
    """The visitor's unwritten session in the shape of a stored one (None if it has none and
    ``create`` is false)."""
    if unwritten_id() is None:
        if not create:
            return None
        session[UNWRITTEN] = [ID_PREFIX + secrets.token_hex(8), _now().isoformat(timespec="milliseconds")]
    session_id, created_at = session[UNWRITTEN]
    now = _now()
    return {
        "session_id": session_id,
        "user_id": user_id,
        "persona": "default",
        "display_name": None,
        "title": None,
        "description": None,
        "metadata": {},
        "created_at": created_at,
        "last_activity": created_at,
        "message_count": 0,
        "archived": False,
        "pinned": False,
        "expires_at": (now + timedelta(seconds=current_app.config["SESSION_TIMEOUT"])).isoformat(
            timespec="milliseconds"
        ),
    }


def listed_with_unwritten(user_id: str, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The visitor's stored sessions and, last, its unwritten one if it has one."""
    pending = unwritten_session(user_id)
    return [*sessions, pending] if pending else sessions


def store_unwritten(user_id: str) -> dict[str, Any]:
    """Store the visitor's unwritten session (it must have one); the stored session, new id."""
    unwritten = unwritten_id()
    assert unwritten is not None
    created = get_store().create_session(user_id=user_id, persona="default", owner=user_id)
    events.emit(events.session_created, session=created)
    session.pop(UNWRITTEN, None)
    session[WRITTEN] = [unwritten, created["session_id"]]
    if session.get(CURRENT) == unwritten:
        session[CURRENT] = created["session_id"]
    return created


def stored_alias(session_id: str) -> str:
    """The stored id of a session this browser knew as ``session_id`` while it was unwritten;
    any other id as it is."""
    held = session.get(WRITTEN)
    if isinstance(held, list) and len(held) == 2 and held[0] == session_id and isinstance(held[1], str):
        return held[1]
    return session_id
