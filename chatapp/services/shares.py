"""Share links: make, list and revoke them, show what one shows, and copy it into one's sessions.

What a link shows anyone is built here, once, for the page and its JSON alike
(``shared_conversation``): the title, the persona's name, the dates and the messages (role,
text, time and the text rendered as HTML), and nothing else: never the owner's user id, the
session id, or the session's or a message's metadata (a reply's metadata holds the model, its
usage and its reasoning).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from markupsafe import Markup
from werkzeug.exceptions import NotFound

from chatapp import events
from chatapp.personas import get_personas
from chatapp.rendering import render_markdown  # the chat view's one Markdown renderer
from chatapp.storage import Session, SessionStore, make_message
from chatapp.storage.shares import SharedPage

PAGE = 200  # messages a page (or its JSON) shows at a time; older ones page back with `before`
GONE = "This link does not work: it expired, was revoked, or never existed."
TITLE = "Shared conversation"


def link_not_found() -> NotFound:
    """The one answer for an expired, revoked, unknown or malformed link: nothing to tell apart."""
    return NotFound(GONE)


def render_message_html(content: str) -> Markup:
    """A message as HTML: the chat view's Markdown renderer (safe by construction), so the
    shared page shows what the chat shows."""
    return render_markdown(content)  # already Markup: escaped and sanitized


def share_url(token: str) -> str:
    return url_for("ui.share.view_share", token=token, _external=True)


def owner_view(share: dict[str, Any]) -> dict[str, Any]:
    """A link as its owner sees it (share_schema's fields)."""
    return {**share, "url": share_url(share["token"])}


def create_share(
    store: SessionStore, session_id: str, owner: str | None, mode: str, expires_in: int | None
) -> dict[str, Any] | None:
    """A new link; a visitor (``owner``) may have MAX_SHARES_PER_USER working at once."""
    cap = int(current_app.config["MAX_SHARES_PER_USER"]) if owner is not None else 0
    share = store.create_share(session_id, mode, expires_in, owner, cap)
    return owner_view(share) if share is not None else None


def _persona_name(persona_id: str | None) -> str:
    persona = get_personas().get(persona_id or "")
    return persona.name if persona is not None else (persona_id or "Assistant")


def title_of(session: dict[str, str]) -> str:
    return session.get("session_display_name") or session.get("session_title") or TITLE


def shared_conversation(page: SharedPage) -> dict[str, Any]:
    """What a link shows (shared_conversation_schema's fields), for the page and the JSON."""
    session, share = page.session, page.share
    return {
        "title": title_of(session),
        "persona": _persona_name(session.get("session_persona")),
        "mode": share["mode"],
        "created_at": session.get("session_created_at"),
        "last_activity": session.get("session_last_activity"),
        "shared_at": share["created_at"],
        "expires_at": share["expires_at"],
        "message_count": page.total,
        "messages": [
            {
                "role": m.get("role", "assistant"),
                "content": m.get("content", ""),
                "html": render_message_html(str(m.get("content", ""))),
                "timestamp": m.get("timestamp", ""),
            }
            for m in page.messages
        ],
        "next_before": page.first_index if page.first_index > 0 and page.messages else None,
    }


def view_share(store: SessionStore, token: str, before: int | None = None) -> dict[str, Any]:
    """What the link shows, a page of it; opening it (the newest page) counts a view. 404 when
    the link does not work."""
    page = store.read_share(token, limit=PAGE, before=before, count_view=before is None)
    if page is None:
        raise link_not_found()
    return shared_conversation(page)


def copy_share(store: SessionStore, token: str, user_id: str, owner: str | None) -> Session:
    """A new session of ``user_id`` holding the link's messages (role, text and time; no
    metadata), with the shared persona and name. ``owner``: the visitor, whose quotas apply.

    Two steps (the link and the new session are in different shards): the session is made, then
    filled; if filling is refused (a quota), the empty session goes again.
    """
    page = store.read_share(token)
    if page is None:
        raise link_not_found()
    persona = page.session.get("session_persona") or "default"
    if persona not in get_personas():
        persona = "default"
    name = page.session.get("session_display_name") or page.session.get("session_title")
    session = store.create_session(user_id=user_id, persona=persona, display_name=name, owner=owner)
    events.emit(events.session_created, session=session)
    messages = [
        {**make_message(m.get("role", "assistant"), m.get("content", "")), "timestamp": m.get("timestamp", "")}
        for m in page.messages
    ]
    if messages:
        try:
            filled = store.append_messages(session["session_id"], messages, owner=owner, announced=False)
        except Exception:
            store.delete_session(session["session_id"])
            raise
        if filled is not None:
            session = filled
    return session
