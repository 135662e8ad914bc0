"""``@endpoint``: a view's request and response schemas, used to parse requests and to document them.

The decorator parses and validates the body and query with the declared schemas and passes
them to the view as ``body`` and ``query``; ``chatapp.api.openapi`` documents the same
schemas, so what is validated is what is documented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from chatapp.api import strict_json
from chatapp.errors import answers_json


@dataclass(frozen=True)
class Operation:
    """What ``@endpoint`` recorded about a view, for the OpenAPI document."""

    responses: dict[int, Schema | None]
    body: Schema | None
    query: Schema | None
    errors: tuple[int, ...]
    tags: tuple[str, ...]
    streams: bool = False
    error_text: dict[int, str] = field(default_factory=dict)  # this view's meaning of a status
    upload: dict[str, Any] | None = None  # a request body the view reads itself: media type -> its doc
    downloads: dict[str, Any] | None = None  # the 200 answer's media types -> their docs, and headers


def json_body() -> dict[str, Any]:
    """The request's JSON object, or 400 with a message a client can act on.

    A body must be declared as JSON: a cross-site page can send a plain-text form without
    asking, but not an application/json one, so this also guards the cookie-less open mode.
    It is parsed strictly (``strict_json``): UTF-8, no NaN or Infinity, no lone surrogates,
    bounded nesting, each key once.
    """
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    data = strict_json.loads(request.get_data(cache=True))
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
    error_text: dict[int, str] | None = None,
    streams: bool = False,
    upload: dict[str, Any] | None = None,
    downloads: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Parse ``body``/``query`` into keyword arguments and record the operation's docs.

    ``error_text`` documents what a status means for this view where that differs from the
    app-wide description (openapi.ERROR_TEXT). ``streams``: with ``Accept: text/event-stream``
    the view answers 200 with Server-Sent Events. ``upload``: a body the view reads itself (a
    file, streamed), documented as given (``{media type: {"schema": ..., "encoding": ...}}``).
    ``downloads``: the 200 answer's media types (``{"content": {...}, "headers": {...}}``), for a
    view answering a file.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = query.load(request.args)
            if body is not None:
                kwargs["body"] = body.load(json_body())
            return view(*args, **kwargs)

        reads_body = body is not None or upload is not None
        always = {414, 503} | ({400, 413, 415, 422} if reads_body else set()) | ({422} if query else set())
        wrapper.openapi = Operation(  # type: ignore[attr-defined]
            responses=responses,
            body=body,
            query=query,
            errors=tuple(sorted(set(errors) | always)),
            tags=tags,
            error_text=dict(error_text or {}),
            streams=streams,
            upload=upload,
            downloads=downloads,
        )
        return answers_json(wrapper)

    return decorate


def operation_of(view: Any) -> Operation | None:
    return getattr(view, "openapi", None)
