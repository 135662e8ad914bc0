"""Request parsing and the OpenAPI document, both driven by the same marshmallow schemas.

A view declares its body, query and response schemas with ``@endpoint``; the decorator
parses and validates the request with them, and ``build_spec`` documents them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from chatapp.auth import PUBLIC_API_PATHS, SAFE_METHODS
from chatapp.limits import limit_kind
from chatapp.schemas import ErrorSchema

ERROR_TEXT = {
    400: "Malformed request (a body that is not a JSON object), or a cookie write without its CSRF token",
    401: "Missing or wrong credentials",
    404: "No such session (or not yours)",
    405: "Method not allowed",
    409: "Conflict with the session's current state",
    413: "Request body over 1 MB",
    415: "A body sent without Content-Type: application/json",
    422: "Validation failed; `error.fields` names each bad field",
    429: "Too many requests; see Retry-After",
    502: "The language model failed or could not be reached; the user's message is kept",
    503: "The session store is unavailable",
    504: "The language model did not answer within CHATAPP_LLM_TIMEOUT; the user's message is kept",
}


def json_body() -> dict[str, Any]:
    """The request's JSON object, or 400 with a message a client can act on.

    A body must be declared as JSON: a cross-site page can send a plain-text form without
    asking, but not an application/json one, so this also guards the cookie-less open mode.
    """
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def endpoint(
    *,
    responses: dict[int, Schema | None],
    body: Schema | None = None,
    query: Schema | None = None,
    errors: tuple[int, ...] = (),
    tags: tuple[str, ...] = ("sessions",),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Parse ``body``/``query`` into keyword arguments and record the operation's docs."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = query.load(request.args)
            if body is not None:
                kwargs["body"] = body.load(json_body())
            return view(*args, **kwargs)

        wrapper.openapi = {  # type: ignore[attr-defined]
            "responses": responses,
            "body": body,
            "query": query,
            "errors": tuple(
                sorted(set(errors) | {503} | ({400, 413, 415, 422} if body else set()) | ({422} if query else set()))
            ),
            "tags": list(tags),
        }
        return wrapper

    return decorate


def _operation(view: Callable[..., Any], path_params: list[str], extra_errors: set[int]) -> dict[str, Any]:
    meta = view.openapi  # type: ignore[attr-defined]
    summary, _, rest = inspect.cleandoc(view.__doc__ or view.__name__).partition("\n")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", rest.strip()) if p.strip()]
    operation: dict[str, Any] = {
        "summary": summary,
        "description": "\n\n".join(paragraphs),
        "tags": meta["tags"],
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}} for name in path_params
        ],
        "responses": {},
    }
    if meta["query"] is not None:
        operation["parameters"].append({"in": "query", "schema": meta["query"]})
    if meta["body"] is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": meta["body"]}},
        }
    for code, schema in meta["responses"].items():
        response: dict[str, Any] = {"description": "Success" if code < 400 else ERROR_TEXT.get(code, "")}
        if schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(code)] = response
    for code in sorted(set(meta["errors"]) | extra_errors):
        operation["responses"].setdefault(
            str(code),
            {"description": ERROR_TEXT[code], "content": {"application/json": {"schema": ErrorSchema}}},
        )
    return operation


def _access_errors(rule: str, endpoint: str | None, method: str) -> set[int]:
    """Answers from auth and limits rather than the view: 401, CSRF's 400, 429."""
    errors: set[int] = set()
    if rule.startswith("/api/") and rule not in PUBLIC_API_PATHS:
        errors.add(401)
        if method not in SAFE_METHODS:
            errors.add(400)
    if limit_kind(rule, endpoint, method) is not None:
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
        view = app.view_functions.get(rule.endpoint)
        if not hasattr(view, "openapi"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                view, sorted(rule.arguments), _access_errors(rule.rule, rule.endpoint, method)
            )
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
        if path.startswith("/api/") and path not in PUBLIC_API_PATHS:
            for operation in operations.values():
                operation["security"] = [{"operatorKey": []}, {"visitorCookie": []}]
        spec.path(path=path, operations=operations)
    return spec.to_dict()
