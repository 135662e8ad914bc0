"""The shared page: one conversation, read-only, for anyone with the link; no script needed.

``GET /share/<token>`` renders what ``GET /api/share/<token>`` answers as JSON (both from
``chatapp.services.shares``). Continue this conversation is a plain form: it copies the
conversation into the viewer's own sessions (making the browser a visitor if it is not one)
and opens it in the app.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from chatapp.api.shares import keep_links_private
from chatapp.schemas import shared_query_schema
from chatapp.services import shares
from chatapp.storage import get_store
from chatapp.web.auth import access, csrf, ensure_visitor
from chatapp.web.limits import rate_limited
from chatapp.web.unwritten import CURRENT

bp = Blueprint("share", __name__)


bp.after_request(keep_links_private)


@bp.get("/share/<token>")
@access("public")
@rate_limited("share_views")
def view_share(token: str):
    """The shared conversation, rendered; the same 404 page for any link that does not work."""
    query = shared_query_schema.load(request.args)
    shared = shares.view_share(get_store(), token, query.get("before"))
    return render_template("share.html", shared=shared, token=token)


@bp.post("/share/<token>/continue")
@access("public")
@rate_limited("sessions")
def continue_share(token: str):
    """Copy the conversation into the viewer's sessions and open it in the app."""
    csrf.protect()  # before ensure_visitor: a first-time viewer's token is all its cookie holds
    user_id = ensure_visitor()
    copied = shares.copy_share(get_store(), token, user_id, owner=user_id)
    session[CURRENT] = copied["session_id"]
    return redirect(url_for("ui.session_page", session_id=copied["session_id"]), code=303)
