"""Reference data: the personas and this API's OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from chatapp.api.endpoint import endpoint
from chatapp.api.openapi import build_spec
from chatapp.errors import answers_json
from chatapp.personas import get_personas
from chatapp.schemas import persona_list_schema
from chatapp.web.auth import access

bp = Blueprint("reference", __name__)


@bp.get("/personas")
@access("public")
@endpoint(responses={200: persona_list_schema}, tags=("personas",))
def list_personas():
    """The personas a session can use (ids, names, descriptions and greetings)."""
    personas = list(get_personas().values())
    return persona_list_schema.dump({"personas": [vars(p) for p in personas], "count": len(personas)})


@bp.get("/openapi.json")
@access("public")
@answers_json
def openapi():
    """This API's OpenAPI 3 document, generated from its marshmallow schemas."""
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["openapi"])
