"""One error handler for the whole app: JSON envelopes from the API, readable pages elsewhere.

The handler never fails itself: if the error page cannot be rendered (a missing template,
a broken install) the answer is plain text with the same status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, jsonify, render_template, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from werkzeug.http import HTTP_STATUS_CODES

from chatapp import events
from chatapp.storage import HistoryChanged, QuotaExceeded, ReplyRunning, StoreUnavailable

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
API_PREFIX = "/api/"  # also answers JSON where no route matched (a mistyped API URL)
JSON_PATHS = frozenset({"/health", "/metrics"})  # JSON even when no route matched (a 405)
PASSED_ON_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
STORE_DOWN = "The session store is unavailable; try again shortly."


def answers_json(view: View) -> View:
    """Declare that a view's errors are JSON envelopes, whatever the client accepts."""
    view.answers_json = True  # type: ignore[attr-defined]
    return view


def wants_json() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "answers_json", False) or request.path.startswith(API_PREFIX) or request.path in JSON_PATHS:
        return True
    return request.accept_mimetypes.best == "application/json"


def _page(code: int, name: str, message: str) -> Response:
    try:
        return Response(render_template("error.html", code=code, name=name, message=message))
    except Exception:  # the error page itself is broken: still answer, in plain text
        log.exception("error page could not be rendered")
        return Response(f"{code} {name}\n\n{message}\n", mimetype="text/plain")


def error_response(code: int, message: str, fields: dict[str, Any] | None = None) -> Response:
    """The error envelope, or an HTML page for browsers outside the API."""
    name = HTTP_STATUS_CODES.get(code, "Error")
    if wants_json():
        body: dict[str, Any] = {"code": code, "name": name, "message": message}
        if fields:
            body["fields"] = fields
        response = jsonify(error=body)
    else:
        response = _page(code, name, message)
    response.status_code = code
    return response


def error_body(exc: HTTPException) -> dict[str, Any]:
    """The envelope of an error that cannot be a status line (an SSE ``error`` event, a reply
    that ended in error): a Retry-After the JSON answer would carry as a header comes as
    ``retry_after`` (seconds)."""
    error: dict[str, Any] = {"code": exc.code, "name": exc.name, "message": exc.description}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after > 0:
        error["retry_after"] = retry_after
    return {"error": error}


def _http_error(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, exc.description or exc.name)
    for key, value in exc.get_headers():
        if key in PASSED_ON_HEADERS:
            response.headers[key] = value
    return response


def _keyed_by_text(messages: Any) -> Any:
    """Errors of list items are keyed by index, beside text keys: JSON keys are text anyway, and
    mixed keys cannot be sorted when the answer is written."""
    if isinstance(messages, dict):
        return {str(k): _keyed_by_text(v) for k, v in messages.items()}
    return messages


def _validation_error(exc: ValidationError) -> Response:
    messages = _keyed_by_text(exc.normalized_messages())
    names = ", ".join(sorted(str(k) for k in messages)) if isinstance(messages, dict) else ""
    summary = f"Invalid input: {names}" if names else "Invalid input"
    fields = messages if isinstance(messages, dict) else {"_schema": messages}
    return error_response(422, summary, fields)


def _store_unavailable(exc: StoreUnavailable) -> Response:
    log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
    events.emit(events.store_error, error=exc, where="request")
    return error_response(ServiceUnavailable.code, STORE_DOWN)


QUOTA_TEXT = {
    "live_sessions": "You have {limit} live sessions, the most you can keep: delete or archive one first.",
    "kept_sessions": "You have {limit} archived sessions, the most you can keep: delete one first.",
    "messages_per_session": "This session holds {limit} messages, the most it can: start a new session.",
    "bytes": "Your sessions hold {limit} bytes of messages, the most you can keep: delete some first.",
    "shares": "You have {limit} working share links, the most you can have: revoke one first.",
}


def _quota_exceeded(exc: QuotaExceeded) -> Response:
    """403 naming the quota (``fields.quota``); nothing was stored."""
    message = "Quota reached: " + QUOTA_TEXT.get(exc.name, "{limit}").format(limit=f"{exc.limit:,}")
    return error_response(403, message, {"quota": [exc.name]})


def _reply_running(exc: ReplyRunning) -> Response:
    """409 naming the running reply (``fields.reply_id``); nothing was stored."""
    message = (
        f"A reply is already being written in this session ({exc.reply_id}): wait for it to end, "
        "or stop it (POST .../stop), then send again. Your message was not stored."
    )
    return error_response(409, message, {"reply_id": [exc.reply_id]})


def _history_changed(exc: HistoryChanged) -> Response:
    """409: the messages changed between reading and writing (another tab); nothing was stored."""
    message = (
        "The conversation changed meanwhile (in another tab or by another client); nothing was changed. "
        "Reload the messages and try again."
    )
    return error_response(409, message)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(InternalServerError.code, "Something went wrong on our side.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(QuotaExceeded, _quota_exceeded)
    app.register_error_handler(ReplyRunning, _reply_running)
    app.register_error_handler(HistoryChanged, _history_changed)
    app.register_error_handler(Exception, _unexpected)
