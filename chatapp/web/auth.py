"""Who is asking (visitors by signed cookie, operators by API key, or nobody) and who may call what.

A visitor sees only its own sessions; an operator acts for any user, as the feature
guide's API examples do. Cookie-authenticated writes must carry a CSRF token.

Each view declares who may call it with ``@access(...)`` next to its route:

- ``public``: anyone (pages that make a visitor on first view, docs, health, static files);
- ``visitor``: a visitor or an operator (everything that touches sessions);
- ``operator``: an operator key only.

A view without a declaration is refused at start-up (``check_declared``), so a new route
cannot be forgotten open or shut.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from flask import Flask, abort, current_app, g, request, session
from flask_wtf.csrf import CSRFProtect

from chatapp.web.cookie_session import CachedSignerSessionInterface

log = logging.getLogger(__name__)

csrf = CSRFProtect()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Access = Literal["public", "visitor", "operator"]
View = TypeVar("View", bound=Callable[..., Any])
BUILT_IN_PUBLIC = frozenset({"static"})  # Flask's own static file view


def access(level: Access) -> Callable[[View], View]:
    """Declare who may call a view: ``public``, ``visitor`` (or an operator) or ``operator``."""

    def declare(view: View) -> View:
        view.access = level  # type: ignore[attr-defined]
        return view

    return declare


def access_of(view: Any) -> Access | None:
    return getattr(view, "access", None)


def check_declared(app: Flask) -> None:
    """Refuse to start with a view that does not say who may call it."""
    missing = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint not in BUILT_IN_PUBLIC and access_of(view) is None
    )
    if missing:
        raise RuntimeError(f"views without an @access(...) declaration: {', '.join(missing)}")


@dataclass(frozen=True)
class Principal:
    """A visitor owns its sessions; an operator (owner None) acts for any user."""

    user_id: str | None
    is_operator: bool
    via_cookie: bool = False
    key_id: str | None = None  # a digest naming the operator's API key (never the key itself)

    @property
    def owner(self) -> str | None:
        """The user id storage must restrict to, or None for everyone's sessions."""
        return None if self.is_operator else self.user_id


def new_user_id() -> str:
    """An unguessable visitor id in the guide's ``user_…`` shape."""
    return f"user_{secrets.token_urlsafe(12)}"


def ensure_visitor() -> str:
    """The browser's user id, assigned on its first visit and kept in the signed cookie."""
    if not isinstance(session.get("user_id"), str):
        session.clear()
        session["user_id"] = new_user_id()
    session.permanent = True
    g.principal = _identify()
    return session["user_id"]


def current_principal() -> Principal:
    """The caller of this request; 401 if there is none."""
    principal = g.get("principal")
    if principal is None:
        abort(401, "Sign in with a visitor cookie (open the app) or send Authorization: Bearer <key>.")
    return principal


def _api_keys() -> list[str]:
    raw = current_app.config.get("API_KEYS") or ""
    return [key.strip() for key in str(raw).split(",") if key.strip()]


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _identify() -> Principal | None:
    token = _bearer_token()
    if token is not None:
        # Compare against every key in constant time, so timing reveals nothing.
        matches = [hmac.compare_digest(token.encode(), key.encode()) for key in _api_keys()]
        if not any(matches):
            abort(401, "Unknown API key.")
        # Keyed with the secret key, so a log line or Redis key naming it cannot be brute-forced.
        secret = str(current_app.config["SECRET_KEY"]).encode()
        key_id = hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()[:16]
        return Principal(user_id=None, is_operator=True, key_id=key_id)
    if current_app.config.get("OPEN_API"):
        return Principal(user_id=None, is_operator=True)
    user_id = session.get("user_id")
    if isinstance(user_id, str):
        return Principal(user_id=user_id, is_operator=False, via_cookie=True)
    return None


def _authenticate() -> None:
    g.principal = _identify()
    if g.principal is not None and g.principal.via_cookie and request.method not in SAFE_METHODS:
        csrf.protect()
    view = current_app.view_functions.get(request.endpoint or "")
    level = "public" if view is None or request.endpoint in BUILT_IN_PUBLIC else access_of(view)
    if level == "public":
        return
    principal = current_principal()  # 401 without one
    if level == "operator" and not principal.is_operator:
        abort(403, "This is for operators.")


def init_app(app: Flask) -> None:
    # Flask's config already holds defaults, so setdefault would never apply; security_headers
    # sets the cookie's HttpOnly, SameSite and Secure flags.
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
        app.config["SESSION_COOKIE_NAME"] = "chatapp"
    app.session_interface = CachedSignerSessionInterface()
    # Token checks run in _authenticate, only for cookie-authenticated writes.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the cookie is
    csrf.init_app(app)
    app.before_request(_authenticate)
    if app.config.get("OPEN_API"):
        log.warning(
            "CHATAPP_OPEN_API is on: every caller is an operator and can read and change "
            "every session. Use this only on a machine of your own."
        )
