"""One JSON log line per request, tied together by a request id, and every other log line JSON too.

The id comes from the caller's (or the proxy's) ``X-Request-ID`` when it looks sane,
otherwise it is generated; either way it is returned as ``X-Request-ID``. Lines carry the
method, path, endpoint, status, duration and who was asking (operator, visitor or
anonymous), never a query string, a body, a header value or a key.

The app's other lines (``model call failed: …``, a store outage, an unexpected error) go out
as JSON objects with time, level, logger, message and the request id (``JsonFormatter``).
Every line is written by a JSON encoder with non-ASCII escaped, so nothing a client sends
(a path with ESC, CR, LF or NUL in it) reaches a log file or terminal raw.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

log = logging.getLogger("chatapp.request")
# Where the app's own lines (and Flask-Limiter's, which reports a limiter storage outage) go.
APP_LOGGERS = ("chatapp", "flask-limiter")

HEADER = "X-Request-ID"
# Ids made by proxies and tracing libraries (uuids, hex, base64, dotted) fit; anything
# longer or stranger is replaced rather than trusted into logs and responses.
SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,127}$")
# The id again, as a context variable: work a request starts on a thread of its own (a
# reply job) copies the context, and its log lines carry the id of the request behind them.
_carried_id: ContextVar[str | None] = ContextVar("chatapp_request_id", default=None)


def request_id() -> str:
    """This request's id (generated on first use if the hook has not run)."""
    if "request_id" not in g:
        incoming = request.headers.get(HEADER, "")
        g.request_id = incoming if SANE_ID.match(incoming) else uuid.uuid4().hex
    return g.request_id


def _principal_kind() -> str:
    principal = g.get("principal")
    if principal is None:
        return "anonymous"
    return "operator" if principal.is_operator else "visitor"


def _start() -> None:
    g.request_started = time.perf_counter()
    g.carried_id = _carried_id.set(request_id())


def _forget(_: BaseException | None) -> None:
    """The thread (or greenlet) goes on to other work: its lines no longer name this request."""
    token = g.pop("carried_id", None)
    if token is not None:
        # Torn down in another context (a streamed answer's end): nothing to undo here.
        with contextlib.suppress(ValueError):
            _carried_id.reset(token)


def _finish(response: Response) -> Response:
    response.headers[HEADER] = request_id()
    started = g.get("request_started", time.perf_counter())
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": request_id(),
        "method": request.method,
        "path": loggable_path(request.path),
        "endpoint": request.url_rule.rule if request.url_rule else None,
        "status": response.status_code,
        "principal": _principal_kind(),
        "remote_addr": request.remote_addr,
    }
    if response.is_streamed:
        # A stream's time is spent after this hook: log when the server closes it.
        response.call_on_close(lambda: _emit(fields, started, streamed=True))
    else:
        _emit(fields, started)
    return response


# A share link's path (/share/<token>..., /api/share/<token>...): matched by shape, not by the
# route, so a request no route took (405, 404) is logged without its token too.
SHARE_PATH = re.compile(r"^(/(?:api/)?share/)[^/]+")


def loggable_path(path: str) -> str:
    """The path, without a share link's token in it: the token is the link's whole secret.
    (gunicorn.conf.py's access log uses it too.)"""
    return SHARE_PATH.sub(r"\1<token>", path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dumps(line: dict[str, Any]) -> str:
    """One log line: compact JSON, every control and non-ASCII character escaped."""
    return json.dumps(line, separators=(",", ":"), ensure_ascii=True, default=str)


def _emit(fields: dict[str, Any], started: float, streamed: bool = False) -> None:
    line = {"time": _now(), **fields, "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
    if streamed:
        line["streamed"] = True
    log.info(dumps(line), extra={"json_line": True})


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time, level, logger, message, request id (in a request),
    and the traceback of a logged exception. The request line is JSON already and passes as is."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "json_line", False):
            return record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id() if has_request_context() else _carried_id.get(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return dumps(line)


def configure_logging() -> None:
    """The app's log lines as JSON on stdout, unless the host (pytest, gunicorn's log config, an
    operator's logging config) already routes log records somewhere. Called before anything logs."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if logging.getLogger().handlers:
        return
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(handler, "chatapp_json", False) for handler in logger.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(JsonFormatter())
            handler.chatapp_json = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


def init_app(app: Flask) -> None:
    """Register first, so the id and the clock exist before any other hook can fail."""
    configure_logging()
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_forget)
