"""The OpenAPI 3 document, built from what each view declares: ``@endpoint`` (schemas),
``@access`` (who may call it) and ``@rate_limited`` (which budget it spends)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from chatapp.api.endpoint import operation_of
from chatapp.schemas import ErrorSchema
from chatapp.web.auth import SAFE_METHODS, access_of
from chatapp.web.limits import limit_kind

ERROR_TEXT = {
    400: "Malformed request (a body that is not a JSON object), or a cookie write without its CSRF token",
    401: "Missing or wrong credentials",
    403: "A visitor's quota is reached (`error.fields.quota` names it), or an operator-only call",
    404: "No such session (or not yours)",
    405: "Method not allowed",
    409: "Conflict with the session's current state",
    413: "Request body over 1 MB",
    415: "A body sent without Content-Type: application/json",
    422: "Validation failed; `error.fields` names each bad field",
    429: "Too many requests; see Retry-After",
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


def _operation(view: Callable[..., Any], path_params: list[str], extra_errors: set[int]) -> dict[str, Any]:
    meta = operation_of(view)
    assert meta is not None
    summary, _, rest = inspect.cleandoc(view.__doc__ or view.__name__).partition("\n")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", rest.strip()) if p.strip()]
    operation: dict[str, Any] = {
        "operationId": view.__name__,
        "summary": summary,
        "description": "\n\n".join(paragraphs),
        "tags": list(meta.tags),
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}} for name in path_params
        ],
        "responses": {},
    }
    if meta.query is not None:
        operation["parameters"].append({"in": "query", "schema": meta.query})
    if meta.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": meta.body}},
        }
    texts = {**ERROR_TEXT, **meta.error_text}
    for code, schema in meta.responses.items():
        response: dict[str, Any] = {"description": "Success" if code < 400 else texts.get(code, "")}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(code)] = response
    for code in sorted(set(meta.errors) | extra_errors):
        operation["responses"].setdefault(
            str(code),
            {"description": texts[code], "content": {"application/json": {"schema": ErrorSchema}}},
        )
    return operation


def _access_errors(view: Any, method: str) -> set[int]:
    """Answers from auth and limits rather than the view: 401 (403), CSRF's 400, 429."""
    errors: set[int] = set()
    level = access_of(view)
    if level != "public":
        errors.add(401)
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
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view: Any = app.view_functions.get(rule.endpoint)
        if operation_of(view) is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(view, sorted(rule.arguments), _access_errors(view, method))
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
    return spec.to_dict()
