"""The OpenAPI document is generated from the schemas and covers every endpoint."""

from __future__ import annotations

import re


def documented_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_api_route_is_documented(app, client):
    spec = client.get("/api/openapi.json").get_json()

    routes = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule == "/health"
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.endpoint != "api.openapi"
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
