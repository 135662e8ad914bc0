"""Rate limits (Flask-Limiter, counted in the app's own Redis) and the request body limit.

Shared budgets, each counted per visitor or per API key and, for everyone but operator
keys, per client address as well:

- messages: ``CHATAPP_MESSAGE_RATE_LIMIT`` and ``CHATAPP_ADDRESS_MESSAGE_RATE_LIMIT``, for views
  declared ``@rate_limited("messages")`` (posting a message and asking for a reply again share
  one budget);
- sessions: ``CHATAPP_SESSION_RATE_LIMIT`` and ``CHATAPP_ADDRESS_SESSION_RATE_LIMIT``, for
  ``@rate_limited("sessions")`` (the API's create, the page's New Session form, the storing
  of a visitor's first session, copying a share link into one's sessions, and an import, one
  per file);
- shares: ``CHATAPP_SHARE_RATE_LIMIT`` and ``CHATAPP_ADDRESS_SHARE_RATE_LIMIT``, for
  ``@rate_limited("shares")`` (making a share link);
- share views: ``CHATAPP_ADDRESS_SHARE_VIEW_RATE_LIMIT``, per client address only, for
  ``@rate_limited("share_views")``: the shared page and its JSON, which anyone may read
  without a cookie, so the address is all there is to count (and to slow down guessing).
- search: ``CHATAPP_SEARCH_RATE_LIMIT``, for ``@rate_limited("search")`` (GET /api/search: a
  search reads more than a listing, so it is counted although it is a GET).

Visitor cookies cost nothing to make, so a per-visitor limit alone multiplies with every fresh
cookie; the per-address count caps them together. Operator keys are not free and are trusted
with bulk work, so they count per key only. IPv6 addresses count per /64, the block one client
usually holds.

A view says which budget it spends next to its route; only POSTs count (GETs too for share
views and searches). The check runs after authentication (so it knows who is asking) and
before the view parses the body.
Over the limit: 429 in the usual error envelope, with ``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import Flask, Response, abort, current_app, g, request
from flask_limiter import Limit, Limiter
from limits import parse_many

from chatapp.settings import MEMORY_URL, ConfigError
from chatapp.storage import limiter_options

Budget = Literal["messages", "sessions", "shares", "share_views", "search"]
View = TypeVar("View", bound=Callable[..., Any])
LIMITED_METHODS = frozenset({"POST", "PUT"})  # the writes that spend a budget (PUT: edits, versions)
BUDGET_METHODS = {
    "share_views": frozenset({"GET", "HEAD"}),
    "search": frozenset({"GET", "HEAD"}),
}  # the others count LIMITED_METHODS
STORAGE_KEY_PREFIX = "chatapp:ratelimit"
EXTENSION = "chatapp.limiter"
SPOOL_IN_MEMORY = 1024 * 1024  # a chunked body past this waits in a temporary file
READ_SIZE = 64 * 1024
LIMIT_SETTINGS = (
    "MESSAGE_RATE_LIMIT",
    "SESSION_RATE_LIMIT",
    "ADDRESS_MESSAGE_RATE_LIMIT",
    "ADDRESS_SESSION_RATE_LIMIT",
    "SHARE_RATE_LIMIT",
    "ADDRESS_SHARE_RATE_LIMIT",
    "ADDRESS_SHARE_VIEW_RATE_LIMIT",
    "SEARCH_RATE_LIMIT",
)


def rate_limited(budget: Budget) -> Callable[[View], View]:
    """Declare that a view's POSTs (GETs, for ``share_views``) spend the shared ``budget`` of the caller."""

    def declare(view: View) -> View:
        view.rate_limit = budget  # type: ignore[attr-defined]
        return view

    return declare


def large_body(setting: str) -> Callable[[View], View]:
    """Declare that a view takes bodies up to the config ``setting`` (bytes) instead of
    MAX_CONTENT_LENGTH: an upload route, which must then read its body as a stream."""

    def declare(view: View) -> View:
        view.body_limit = setting  # type: ignore[attr-defined]
        return view

    return declare


def body_limit() -> int | None:
    """The most bytes this request's body may hold: its view's own limit, or MAX_CONTENT_LENGTH."""
    view = current_app.view_functions.get(request.endpoint or "")
    setting = getattr(view, "body_limit", None) or "MAX_CONTENT_LENGTH"
    return current_app.config.get(setting)


def limit_kind(view: Any, method: str) -> str | None:
    """Which shared limit (``messages``, ``sessions``, ...) a call of ``view`` spends, if any."""
    budget = getattr(view, "rate_limit", None)
    if budget is None or method.upper() not in BUDGET_METHODS.get(budget, LIMITED_METHODS):
        return None
    return str(budget)


def _request_kind() -> str | None:
    view = current_app.view_functions.get(request.endpoint or "")
    return limit_kind(view, request.method) if view is not None else None


def rate_limit_key() -> str:
    """Who a request counts against: the operator's key, the visitor, or else the address."""
    principal = g.get("principal")
    if principal is not None and principal.key_id:
        return f"key:{principal.key_id}"
    if principal is not None and principal.user_id:
        return f"user:{principal.user_id}"
    return f"addr:{request.remote_addr or 'unknown'}"


def client_address() -> str:
    """The client's address (its /64 for IPv6) as the address limits count it."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return f"addr:{raw}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"addr:{address.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"addr:{address}"


def _operator_key() -> bool:
    principal = g.get("principal")
    return principal is not None and bool(principal.key_id)


def storage_uri(app: Flask) -> str:
    """Flask-Limiter's storage for this app: the same Redis the sessions live in."""
    url: str = app.config["REDIS_URL"]
    if url.startswith(MEMORY_URL):
        return "memory://"  # in-process, like the embedded store
    if app.config.get("REDIS_CLUSTER"):
        return "redis+cluster://" + url.split("://", 1)[1]
    if url.startswith("unix://"):
        return "redis+unix://" + url.split("://", 1)[1]
    return url


def _storage_options(app: Flask) -> dict[str, Any]:
    uri = app.config["RATELIMIT_STORAGE_URI"]
    if uri.startswith("memory://"):
        return {}
    # Its own small bounded pool, with time-outs shorter than the store's (chatapp.storage).
    return {"key_prefix": STORAGE_KEY_PREFIX, **limiter_options(app, uri)}


def _shared_limit(kind: str, setting: str, what: str, per_address: bool = False) -> Limit:
    """One budget for every route of ``kind``, read from ``setting`` per request: per visitor or
    key, or (``per_address``) per client address whatever cookie it sends, operator keys exempt."""
    source = " from your network address" if per_address else ""
    retry = "retry" if per_address else "try again"

    def too_many() -> str:
        limit = current_app.config[setting]
        return f"Too many {what}{source} (the limit is {limit}); {retry} after Retry-After seconds."

    def exempt() -> bool:
        return _request_kind() != kind or (per_address and _operator_key())

    return Limit(
        lambda: current_app.config[setting] or "",
        key_function=client_address if per_address else None,
        scope=f"{kind}-per-address" if per_address else kind,
        shared=True,
        exempt_when=exempt,
        error_message=too_many,
    )


def _reject_large_body() -> None:
    """413 for a body over the limit (MAX_CONTENT_LENGTH, or the view's own: ``large_body``),
    before anything parses it.

    A declared length is checked as is. A body without one (chunked) is read here, at most
    one byte past the limit, into a temporary file once past 1 MB: Werkzeug alone would quietly
    cut it off at the limit, and a truncated body could still parse.
    """
    limit = body_limit()
    if limit is None:
        return
    request.max_content_length = limit  # what Werkzeug's own parsing (forms, files) holds to
    if request.content_length is not None:
        if request.content_length > limit:
            abort(413, f"Request bodies may be at most {limit:,} bytes.")
        return
    if request.environ.get("wsgi.input_terminated"):
        body = g.spooled_body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - see _close_spooled
        size = 0
        try:
            while size <= limit and (chunk := request.environ["wsgi.input"].read(min(READ_SIZE, limit + 1 - size))):
                body.write(chunk)
                size += len(chunk)
        except Exception:  # noqa: BLE001 - each server raises its own (gunicorn: InvalidChunkSize, NoMoreData)
            abort(400, "The request body could not be read.")
        if size > limit:
            abort(413, f"Request bodies may be at most {limit:,} bytes.")
        body.seek(0)
        request.environ["wsgi.input"] = body


def _close_spooled(_: BaseException | None) -> None:
    """A chunked body's temporary file goes with its request."""
    spooled = g.pop("spooled_body", None)
    if spooled is not None:
        spooled.close()


def _note_own_retry_after(response: Response) -> Response:
    """Before Flask-Limiter's headers: remember a Retry-After the answer came with."""
    g.own_retry_after = response.headers.get("Retry-After")
    return response


def _restore_own_retry_after(response: Response) -> Response:
    """After Flask-Limiter's headers: only a 429 of the limiter says to wait for its window.

    Flask-Limiter writes Retry-After on every answer of a limited endpoint, 201s included
    (the end of the budget's window, or a longer one the answer had). A 503 passing on the
    model server's Retry-After must say when the model can be asked again, and one without
    must not invent a wait; X-RateLimit-Reset still tells when the window ends.
    """
    own = g.pop("own_retry_after", None)
    if response.status_code == 429:
        return response
    if own is None:
        response.headers.pop("Retry-After", None)
    else:
        response.headers["Retry-After"] = own
    return response


def init_app(app: Flask) -> None:
    """Call after auth.init_app: limits count against the principal auth has identified."""
    for setting in LIMIT_SETTINGS:
        if app.config[setting] in ("", None):
            continue  # empty: no limit of this kind
        try:
            parse_many(str(app.config[setting]))
        except ValueError as exc:
            raise ConfigError(
                f"{setting} must be in Flask-Limiter's syntax, like '30 per minute' or '5/second; 100/hour', "
                f"got {app.config[setting]!r}"
            ) from exc
    app.before_request_funcs.setdefault(None, []).insert(0, _reject_large_body)
    app.teardown_request(_close_spooled)
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app))
    # One Limiter per app: Flask-Limiter keeps its storage on the instance, and tests and
    # workers may build several apps in one process.
    limiter = Limiter(
        key_func=rate_limit_key,
        storage_options=_storage_options(app),
        default_limits=[
            _shared_limit("messages", "MESSAGE_RATE_LIMIT", "messages"),
            _shared_limit("sessions", "SESSION_RATE_LIMIT", "new sessions"),
            _shared_limit("search", "SEARCH_RATE_LIMIT", "searches"),
            _shared_limit("messages", "ADDRESS_MESSAGE_RATE_LIMIT", "messages", per_address=True),
            _shared_limit("sessions", "ADDRESS_SESSION_RATE_LIMIT", "new sessions", per_address=True),
            _shared_limit("shares", "SHARE_RATE_LIMIT", "new share links"),
            _shared_limit("shares", "ADDRESS_SHARE_RATE_LIMIT", "new share links", per_address=True),
            _shared_limit("share_views", "ADDRESS_SHARE_VIEW_RATE_LIMIT", "share link views", per_address=True),
        ],
    )
    limiter.init_app(app)
    # after_request hooks run last-registered first: this one before Flask-Limiter's, ...
    app.after_request(_note_own_retry_after)
    # ... and this one after it.
    app.after_request_funcs.setdefault(None, []).insert(0, _restore_own_retry_after)
    app.extensions[EXTENSION] = limiter
