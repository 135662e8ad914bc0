"""The web page blueprint: the chat, and the New Session and Sessions modals (``views``)."""

from __future__ import annotations

from chatapp.ui.views import bp

__all__ = ["bp"]
