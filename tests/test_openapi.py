"""The OpenAPI document is generated from the schemas and covers every endpoint."""

from __future__ import annotations

import re

import pytest

from chatapp.web.auth import check_declared


def documented_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_api_route_is_documented(app, client):
    spec = client.get("/api/openapi.json").get_json()

    routes = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule == "/health"
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.endpoint != "api.reference.openapi"
    }
    assert spec["openapi"].startswith("3.")
    assert routes <= documented_operations(spec)


def test_operations_carry_summaries_schemas_and_error_envelopes(client):
    spec = client.get("/api/openapi.json").get_json()

    create = spec["paths"]["/api/session/create"]["post"]
    assert create["summary"] == "Create a session."
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SessionCreate")
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/Session")
    assert create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    listing = spec["paths"]["/api/sessions"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "offset", "user_id", "persona", "archived"}
    history = spec["paths"]["/api/session/{user_id}/history"]["get"]
    assert "most recently active session" in history["description"]
    session = spec["components"]["schemas"]["Session"]
    assert {"session_id", "user_id", "persona", "created_at", "last_activity", "message_count"} <= set(
        session["required"]
    )


def test_every_operation_has_a_unique_operation_id(client):
    spec = client.get("/api/openapi.json").get_json()

    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert spec["paths"]["/api/sessions/{session_id}/messages"]["post"]["operationId"] == "post_message"


def test_a_view_without_an_access_rule_stops_the_app(memory_app):
    memory_app.view_functions["api.reference.list_personas"].access = None
    try:
        with pytest.raises(RuntimeError, match="api.reference.list_personas"):
            check_declared(memory_app)
    finally:
        memory_app.view_functions["api.reference.list_personas"].access = "public"


def test_an_undeclared_view_added_later_is_closed_to_anonymous_callers(memory_app):
    memory_app.add_url_rule("/undeclared", "undeclared", lambda: "secret")

    assert memory_app.test_client().get("/undeclared").status_code == 401
