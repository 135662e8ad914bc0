"""The REST API blueprint: the feature guide's endpoints and the /api/sessions resources.

Views parse with a schema (``@endpoint``), say who may call them (``@access``), call a
service or the store, and dump with a schema. One module per area, each a blueprint
nested under ``/api``; ``/health`` has a blueprint of its own (``chatapp.api.health``).
"""

from __future__ import annotations

from flask import Blueprint

from chatapp.api import messages, reference, sessions

bp = Blueprint("api", __name__, url_prefix="/api")
for area in (sessions, messages, reference):
    bp.register_blueprint(area.bp)
