"""The web page blueprint: the chat, and the New Session and Sessions modals (``views``); the
shared page of a share link (``shares``)."""

from __future__ import annotations

from chatapp.ui import shares
from chatapp.ui.views import bp

bp.register_blueprint(shares.bp)

__all__ = ["bp"]
