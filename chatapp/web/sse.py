"""Server-Sent Events framing, and whether a request asked for a stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from flask import request
from werkzeug.exceptions import HTTPException

from chatapp.errors import error_body

EVENT_STREAM = "text/event-stream"
# Proxies must pass each event on at once (nginx honours X-Accel-Buffering per response).
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_stream() -> bool:
    """Accept: text/event-stream asks for Server-Sent Events; anything else gets JSON."""
    best = request.accept_mimetypes.best_match(["application/json", EVENT_STREAM], default="application/json")
    return best == EVENT_STREAM


def prefers_async() -> bool:
    """``Prefer: respond-async`` (RFC 7240): answer 202 once the reply has started, and let
    the client follow it on the session's live channel."""
    return any(
        part.strip().lower() == "respond-async"
        for value in request.headers.getlist("Prefer")
        for part in value.split(",")
    )


def frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def error_data(exc: HTTPException) -> dict[str, Any]:
    """The JSON error envelope, for an ``error`` event (the status line has long been sent)."""
    return error_body(exc)


def frames(events: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    """Frame each (event, data); closing the frames (a client gone) closes ``events`` too."""
    with closing(events):  # type: ignore[type-var]
        for event, data in events:
            yield frame(event, data)
