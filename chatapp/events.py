"""Signals other parts of the app listen to (metrics, logs), so views and services stay unaware of them.

``emit`` sends with the current app as the sender; receivers must be cheap and must not raise.
"""

from __future__ import annotations

from typing import Any

from blinker import NamedSignal, Namespace
from flask.globals import app_ctx

_signals = Namespace()

# kwargs: session (the stored session dict)
session_created = _signals.signal("session-created")
# kwargs: session_id, count (messages stored in this write)
messages_stored = _signals.signal("messages-stored")
# kwargs: model, persona, seconds, outcome ("ok", "error", "timeout", "stopped")
model_replied = _signals.signal("model-replied")
# kwargs: error (the store's exception), where ("request" or "health")
store_error = _signals.signal("store-error")
# kwargs: kind ("replies": replies being written here, "listeners": open live channels), delta (+1, -1)
live_changed = _signals.signal("live-changed")


def emit(signal: NamedSignal, **data: Any) -> None:
    """Send ``signal`` from the app in whose context this runs (the app object, not a proxy)."""
    signal.send(app_ctx.app, **data)


def emit_from(app: Any, signal: NamedSignal, **data: Any) -> None:
    """Send ``signal`` from ``app``, for code running outside its context (a streamed answer)."""
    signal.send(app, **data)
