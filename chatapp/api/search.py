"""GET /api/search: words across the caller's conversations (chatapp/services/search.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from chatapp.api.endpoint import endpoint
from chatapp.schemas import search_query_schema, search_schema
from chatapp.services import search as search_service
from chatapp.web.auth import access, current_principal
from chatapp.web.limits import rate_limited

bp = Blueprint("search", __name__)


@bp.get("/search")
@access("visitor")
@rate_limited("search")
@endpoint(
    query=search_query_schema,
    responses={200: search_schema},
    errors=(400,),
    tags=("search",),
    error_text={400: "A query that cannot be searched: empty, over 200 characters, unbalanced quotes, only `*`"},
)
def search(query: dict[str, Any]):
    """Search titles, descriptions and messages.

    Every word must be in the session (its title, name, description or any message), case and
    accents aside; `"a phrase"` must be in one of them word for word; `proj*` matches any word
    it begins. Sessions whose title or description holds the words come first, then by how
    often their messages hold them, then the most recent. A visitor searches its own
    sessions; an operator everyone's, or one `user_id`'s. Snippets are plain text with the
    hits' offsets in `highlights`.
    """
    return search_schema.dump(search_service.search(query, current_principal().owner))
