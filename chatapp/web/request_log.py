"""One JSON log line per request, tied together by a request id.

The id comes from the caller's (or the proxy's) ``X-Request-ID`` when it looks sane,
otherwise it is generated; either way it is returned as ``X-Request-ID``. Lines carry the
method, path, endpoint, status, duration and who was asking (operator, visitor or
anonymous), never a query string, a body, a header value or a key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

log = logging.getLogger("chatapp.request")

HEADER = "X-Request-ID"
# Ids made by proxies and tracing libraries (uuids, hex, base64, dotted) fit; anything
# longer or stranger is replaced rather than trusted into logs and responses.
SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+/=-]{0,127}$")


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
    request_id()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = request_id()
    started = g.get("request_started", time.perf_counter())
    fields: dict[str, Any] = {
        "event": "request",
        "request_id": request_id(),
        "method": request.method,
        "path": request.path,
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


def _emit(fields: dict[str, Any], started: float, streamed: bool = False) -> None:
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        **fields,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if streamed:
        line["streamed"] = True
    log.info(json.dumps(line, separators=(",", ":"), ensure_ascii=False))


def _configure_logger() -> None:
    """INFO lines to stdout, unless the host (pytest, an operator's logging config) already
    routes log records somewhere."""
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)


def init_app(app: Flask) -> None:
    """Register first, so the id and the clock exist before any other hook can fail."""
    _configure_logger()
    app.before_request(_start)
    app.after_request(_finish)
