"""The REST API blueprint: the feature guide's endpoints and the /api/sessions resources.

Views parse with a schema (``@endpoint``), say who may call them (``@access``), call a
service or the store, and dump with a schema. One module per area, each a blueprint
nested under ``/api``; ``/health`` has a blueprint of its own (``chatapp.api.health``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from chatapp.api import live, messages, reference, search, sessions, shares, transfer
from chatapp.web.unwritten import stored_alias

bp = Blueprint("api", __name__, url_prefix="/api")
for area in (sessions, messages, live, transfer, reference, shares, search):
    bp.register_blueprint(area.bp)


@bp.url_value_preprocessor
def _known_by_its_unwritten_id(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A browser may still name its first session by the id it had before it was stored."""
    if values and isinstance(values.get("session_id"), str):
        values["session_id"] = stored_alias(values["session_id"])
