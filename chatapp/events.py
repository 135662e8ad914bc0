"""Signals other parts of the app listen to (metrics, logs), so views stay unaware of them.

Senders pass the app as the sender; receivers must be cheap and must not raise.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# kwargs: session (the stored session dict)
session_created = _signals.signal("session-created")
# kwargs: session_id, count (messages stored in this write)
messages_stored = _signals.signal("messages-stored")
# kwargs: model, persona, seconds, outcome ("ok", "error", "timeout", "interrupted")
model_replied = _signals.signal("model-replied")
# kwargs: error (the RedisError), where ("request" or "health")
store_error = _signals.signal("store-error")
