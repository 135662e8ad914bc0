"""The OpenAPI 3 document, built from what each view declares: ``@endpoint`` (schemas),
``@access`` (who may call it) and ``@rate_limited`` (which budget it spends), plus what only
the running app knows (its personas, its message length limit).

It states what the app does, checked by schemathesis ``--checks all`` in tests/test_api_document.py:
which answers can come (a wrong key's 401 on public operations too, 413/414/415, 429 with
Retry-After, the streamed 200), which bodies are required, and every limit that is enforced.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from werkzeug.routing import IntegerConverter

from chatapp.api.endpoint import operation_of
from chatapp.personas import get_personas
from chatapp.schemas import ErrorSchema
from chatapp.web.auth import SAFE_METHODS, access_of
from chatapp.web.limits import limit_kind

ERROR_TEXT = {
    400: "Malformed request: a body that is not strict JSON (NaN, Infinity, lone surrogates, nesting over 32, "
    "repeated keys, not UTF-8) or not an object, or a cookie write without its CSRF token",
    401: "Missing or wrong credentials",
    403: "A visitor's quota is reached (`error.fields.quota` names it), or an operator-only call",
    404: "No such session (or not yours)",
    405: "Method not allowed",
    409: "Conflict with the session's current state",
    413: "Request body over 1 MB",
    414: "Request line over 4,094 bytes: answered by gunicorn (limit_request_line), in the same JSON envelope",
    415: "A body sent without Content-Type: application/json",
    422: "Validation failed; `error.fields` names each bad field",
    429: "Too many requests from this visitor, key or address; see Retry-After",
    502: (
        "The language model failed or could not be reached; the user's message is kept (and any text "
        "that arrived, marked incomplete)"
    ),
    503: "The session store is unavailable",
    504: (
        "The language model did not answer within CHATAPP_LLM_TIMEOUT or did not finish within "
        "CHATAPP_LLM_MAX_SECONDS; the user's message is kept (and any text that arrived, marked incomplete)"
    ),
}
PUBLIC_401 = "A wrong API key: `Authorization: Bearer` with a key that is not an operator key is refused everywhere"
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds until the limit allows another request.", "schema": {"type": "integer"}}
}
STREAM_TEXT = (
    "With `Accept: text/event-stream`: Server-Sent Events (`user_message`, `delta` per piece, then `done` "
    "or `error`); see the description"
)


# One Server-Sent Event as a client reads it: its kind, its data (a JSON document) and, on
# the live channel, its id.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "description": "A JSON document; its shape depends on the event."},
        "id": {"type": "string", "description": "The event's id (live channel): resume with Last-Event-ID."},
    },
    "required": ["data"],
}


def _min_properties(schema: Any) -> int:
    """A body schema's MIN_PROPERTIES (how many fields a request must give at least), or 0."""
    return int(getattr(schema, "MIN_PROPERTIES", 0))


def _path_parameter(name: str, converter: Any) -> dict[str, Any]:
    """A path segment: a string, or a whole number for Flask's ``int`` converter (no sign)."""
    schema: dict[str, Any] = {"type": "string"}
    if isinstance(converter, IntegerConverter):
        schema = {"type": "integer", "minimum": 0}
    return {"in": "path", "name": name, "required": True, "schema": schema}


def _operation(
    view: Callable[..., Any], path_params: list[str], extra_errors: set[int], converters: Any = None
) -> dict[str, Any]:
    meta = operation_of(view)
    assert meta is not None
    summary, _, rest = inspect.cleandoc(view.__doc__ or view.__name__).partition("\n")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", rest.strip()) if p.strip()]
    operation: dict[str, Any] = {
        "operationId": view.__name__,
        "summary": summary,
        "description": "\n\n".join(paragraphs),
        "tags": list(meta.tags),
        "parameters": [_path_parameter(name, (converters or {}).get(name)) for name in path_params],
        "responses": {},
    }
    if meta.query is not None:
        operation["parameters"].append({"in": "query", "schema": meta.query})
    if meta.body is not None:
        # Required when the schema needs something: create's fields all have defaults, so an empty
        # request creates a session; an empty PATCH or message body is refused (422).
        needed = any(field.required for field in meta.body.fields.values()) or _min_properties(meta.body) > 0
        operation["requestBody"] = {
            "required": needed,
            "content": {"application/json": {"schema": meta.body}},
        }
    if meta.upload is not None:
        operation["requestBody"] = {"required": True, "content": meta.upload}
    texts = {**ERROR_TEXT, **meta.error_text}
    for code, schema in meta.responses.items():
        response: dict[str, Any] = {"description": "Success" if code < 400 else texts.get(code, "")}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(code)] = response
    if meta.downloads is not None:
        operation["responses"]["200"] = {"description": meta.error_text.get(200, "Success"), **meta.downloads}
    if meta.streams:
        operation["responses"]["200"] = {
            "description": meta.error_text.get(200, STREAM_TEXT),
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        }
    for code in sorted(set(meta.errors) | extra_errors):
        operation["responses"].setdefault(
            str(code),
            {"description": texts[code], "content": {"application/json": {"schema": ErrorSchema}}},
        )
    if "429" in operation["responses"]:
        operation["responses"]["429"]["headers"] = RETRY_AFTER
    return operation


def _access_errors(view: Any, method: str) -> set[int]:
    """Answers from auth and limits rather than the view: 401 (403), CSRF's 400, 429."""
    errors: set[int] = {401}  # a wrong key is refused on public operations too
    level = access_of(view)
    if level != "public":
        if level == "operator":
            errors.add(403)
        if method not in SAFE_METHODS:
            errors.add(400)
    if limit_kind(view, method) is not None:
        errors.add(429)
    return errors


def build_spec(app: Flask) -> dict[str, Any]:
    """OpenAPI 3 document for every view declared with ``@endpoint``."""
    spec = APISpec(
        title="chatapp",
        version="1.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": app.config.get("API_DESCRIPTION", "")},
    )
    paths: dict[str, dict[str, Any]] = {}
    min_properties: dict[str, int] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view: Any = app.view_functions.get(rule.endpoint)
        meta = operation_of(view)
        if meta is None:
            continue
        if meta.body is not None and _min_properties(meta.body):
            # apispec names a component after its class, less "Schema"
            min_properties[type(meta.body).__name__.removesuffix("Schema")] = _min_properties(meta.body)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            errors = _access_errors(view, method)
            operation = _operation(view, sorted(rule.arguments), errors, rule._converters)
            if access_of(view) != "public":
                operation["security"] = [{"operatorKey": []}, {"visitorCookie": []}]
            paths.setdefault(path, {})[method.lower()] = operation
    spec.components.security_scheme(
        "operatorKey",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An operator key from CHATAPP_API_KEYS.",
        },
    )
    spec.components.security_scheme(
        "visitorCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config.get("SESSION_COOKIE_NAME", "chatapp"),
            "description": "The browser's signed visitor cookie; writes also need the X-CSRFToken header.",
        },
    )
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    for name, count in min_properties.items():
        document["components"]["schemas"][name]["minProperties"] = count
    _what_the_app_knows(app, document)
    return document


def _what_the_app_knows(app: Flask, document: dict[str, Any]) -> None:
    """Limits and choices that depend on this app's configuration and personas file, and the
    401 text of operations anyone may call."""
    schemas = document["components"]["schemas"]
    with app.app_context():
        persona_ids = list(get_personas())
    schemas["SessionCreate"]["properties"]["persona"]["enum"] = persona_ids
    schemas["ImportForm"]["properties"]["persona"]["enum"] = persona_ids
    for parameter in document["paths"]["/api/import"]["post"]["parameters"]:
        if parameter["name"] == "persona":
            parameter["schema"]["enum"] = persona_ids
    schemas["MessageCreate"]["properties"]["content"]["maxLength"] = app.config["MAX_MESSAGE_LENGTH"]
    for operations in document["paths"].values():
        for operation in operations.values():
            if "security" not in operation:
                operation["responses"]["401"]["description"] = PUBLIC_401
