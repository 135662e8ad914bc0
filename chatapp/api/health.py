"""GET /health: is the app up, and does its store answer?"""

from __future__ import annotations

from flask import Blueprint, current_app

from chatapp import assistant, events
from chatapp.api.endpoint import endpoint
from chatapp.schemas import health_schema
from chatapp.storage import StoreUnavailable, get_store, store_kind
from chatapp.web.auth import access

bp = Blueprint("health", __name__)


@bp.get("/health")
@access("public")
@endpoint(responses={200: health_schema, 503: health_schema}, tags=("operations",))
def health():
    """Liveness and store health.

    200 when Redis answers a PING; 503, with the same keys naming the problem, when not.
    `assistant` says which model is configured (or `offline`); the model itself is not called.
    """
    kind = store_kind(current_app)
    model = assistant.describe(current_app)
    try:
        get_store().ping()
    except StoreUnavailable as exc:
        events.emit(events.store_error, error=exc, where="health")
        problem = f"unavailable: {type(exc).__name__}: {exc}"
        answer = {"status": "unavailable", "redis": problem, "store": kind, "assistant": model}
        return health_schema.dump(answer), 503
    return health_schema.dump({"status": "ok", "redis": "ok", "store": kind, "assistant": model})
