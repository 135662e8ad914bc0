"""Share links: an owner makes, lists and revokes them; anyone with one reads it or copies it.

``/share/<token>`` (chatapp.ui.shares) is the page; ``/api/share/<token>`` the same as JSON.
Every answer of this area says ``X-Robots-Tag: noindex`` and ``Referrer-Policy: no-referrer``:
a link is a secret in a URL, which a search engine or another site's logs must not get.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for
from werkzeug.exceptions import NotFound

from chatapp.api.endpoint import endpoint
from chatapp.schemas import (
    share_copy_schema,
    share_create_schema,
    share_list_schema,
    share_schema,
    shared_conversation_schema,
    shared_query_schema,
    status_schema,
)
from chatapp.services import shares
from chatapp.services.chat import not_found
from chatapp.storage import get_store
from chatapp.web.auth import access, current_principal, new_user_id
from chatapp.web.limits import rate_limited

bp = Blueprint("shares", __name__)
TAGS = ("shares",)
LINK_GONE = {404: "The link expired, was revoked or never existed (one answer for all three)"}
PRIVATE_LINK_HEADERS = {"X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


@bp.after_request
def keep_links_private(response: Response) -> Response:
    """Share links stay out of search engines and other sites' Referer headers (the page too)."""
    response.headers.update(PRIVATE_LINK_HEADERS)
    return response


@bp.post("/sessions/<session_id>/shares")
@access("visitor")
@rate_limited("shares")
@endpoint(body=share_create_schema, responses={201: share_schema}, errors=(403, 404), tags=TAGS)
def create_share(session_id: str, body: dict[str, Any]):
    """Make a share link to a session.

    Anyone with the link's `url` can read the conversation, without signing in, until
    `expires_at` (`expires_in` seconds from now, 60 to 31536000; null: until revoked). A
    `snapshot` shows the conversation as it is now, and keeps working after the session expires
    or is deleted; a `live` link shows the session as it is when opened, and ends with it. A
    visitor may have CHATAPP_MAX_SHARES_PER_USER links working at once (403 past that).
    """
    principal = current_principal()
    share = shares.create_share(get_store(), session_id, principal.owner, body["mode"], body["expires_in"])
    if share is None:
        raise not_found(session_id)
    return share_schema.dump(share), 201


@bp.get("/sessions/<session_id>/shares")
@access("visitor")
@endpoint(responses={200: share_list_schema}, errors=(404,), tags=TAGS)
def list_shares(session_id: str):
    """A session's working share links, newest first, with their view counts."""
    found = get_store().list_shares(session_id, current_principal().owner)
    if found is None:
        raise not_found(session_id)
    return share_list_schema.dump({"shares": [shares.owner_view(s) for s in found], "count": len(found)})


@bp.delete("/shares/<share_id>")
@access("visitor")
@endpoint(responses={200: status_schema}, errors=(404,), tags=TAGS, error_text={404: "No such link (or not yours)"})
def revoke_share(share_id: str):
    """Revoke a share link: it answers 404 from now on."""
    if not get_store().revoke_share(share_id, current_principal().owner):
        raise NotFound(f"No share link found for '{share_id}'.")
    return status_schema.dump({"status": "success", "message": f"Share link {share_id} revoked"})


@bp.get("/share/<token>")
@access("public")
@rate_limited("share_views")
@endpoint(query=shared_query_schema, responses={200: shared_conversation_schema}, errors=(404,), tags=TAGS,
          error_text=LINK_GONE)  # fmt: skip
def read_shared(token: str, query: dict[str, Any]):
    """What a share link shows, as JSON: anyone with the token may read it.

    The title, the persona's name, the dates and the newest 200 messages (`next_before` pages
    back), each with its text rendered as HTML; never whose it is, the session's id or any
    metadata. Opening it counts a view.
    """
    return shared_conversation_schema.dump(shares.view_share(get_store(), token, query.get("before")))


@bp.post("/share/<token>/copy")
@access("visitor")
@rate_limited("sessions")
@endpoint(responses={201: share_copy_schema}, errors=(403, 404), tags=TAGS, error_text=LINK_GONE)
def copy_shared(token: str):
    """Copy a shared conversation into a new session of your own, to continue it.

    The new session has the shared persona, name and messages (without their metadata); `url`
    opens it in the app.
    """
    principal = current_principal()
    user_id = principal.owner or new_user_id()
    session = shares.copy_share(get_store(), token, user_id, principal.owner)
    url = url_for("ui.session_page", session_id=session["session_id"], _external=True)
    copied = {"session_id": session["session_id"], "url": url, "message_count": session["message_count"]}
    return share_copy_schema.dump(copied), 201
