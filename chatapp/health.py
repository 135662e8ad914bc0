"""GET /health: is the app up, and does its store answer?"""

from __future__ import annotations

from flask import Blueprint, current_app
from redis.exceptions import RedisError

from chatapp import assistant, events
from chatapp.apidoc import endpoint
from chatapp.redis_client import get_store, store_kind
from chatapp.schemas import health_schema

bp = Blueprint("health", __name__)


@bp.get("/health")
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
    except RedisError as exc:
        events.store_error.send(current_app._get_current_object(), error=exc, where="health")
        problem = f"unavailable: {type(exc).__name__}: {exc}"
        return health_schema.dump({"status": "unavailable", "redis": problem, "store": kind, "assistant": model}), 503
    return health_schema.dump({"status": "ok", "redis": "ok", "store": kind, "assistant": model})
