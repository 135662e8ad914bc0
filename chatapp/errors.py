"""One error handler for the whole app: JSON envelopes under /api/, readable pages elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from marshmallow import ValidationError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES

from chatapp import events

log = logging.getLogger(__name__)

JSON_PATHS = ("/api/", "/health", "/metrics")


def wants_json() -> bool:
    return request.path.startswith(JSON_PATHS) or request.accept_mimetypes.best == "application/json"


def error_response(code: int, message: str, fields: dict[str, Any] | None = None) -> Response:
    """The error envelope, or an HTML page for browsers outside the API."""
    name = HTTP_STATUS_CODES.get(code, "Error")
    if wants_json():
        body: dict[str, Any] = {"code": code, "name": name, "message": message}
        if fields:
            body["fields"] = fields
        response = jsonify(error=body)
    else:
        response = Response(render_template("error.html", code=code, name=name, message=message))
    response.status_code = code
    return response


def _http_error(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, exc.description or exc.name)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        original = exc.get_headers()
        for key, value in original:
            if key == header:
                response.headers[key] = value
    return response


def _validation_error(exc: ValidationError) -> Response:
    messages = exc.normalized_messages()
    names = ", ".join(sorted(str(k) for k in messages)) if isinstance(messages, dict) else ""
    summary = f"Invalid input: {names}" if names else "Invalid input"
    fields = messages if isinstance(messages, dict) else {"_schema": messages}
    return error_response(422, summary, fields)


def _store_unavailable(exc: RedisError) -> Response:
    log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
    events.store_error.send(current_app._get_current_object(), error=exc, where="request")
    return error_response(ServiceUnavailable.code, "The session store is unavailable; try again shortly.")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(InternalServerError.code, "Something went wrong on our side.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(RedisError, _store_unavailable)
    app.register_error_handler(Exception, _unexpected)
