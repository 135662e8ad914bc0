"""The visitor's cookie, signed as Flask signs it, with one signer per secret instead of one per request.

Flask's SecureCookieSessionInterface builds a new itsdangerous serializer for every request,
and itsdangerous probes each new one with a ``dumps({})`` through Flask's tagged JSON: a few
percent of a worker's CPU when it relays a thousand streams (py-spy, bench/results.md). The
serializer holds nothing per request, so one per secret (and fallbacks) is enough; rotating
the secret builds a new one.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface


class CachedSignerSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._signer: tuple[Any, Any] | None = None

    def get_signing_serializer(self, app: Flask) -> Any:
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if self._signer is None or self._signer[0] != key:
            self._signer = (key, super().get_signing_serializer(app))
        return self._signer[1]
