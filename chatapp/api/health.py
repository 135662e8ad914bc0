"""GET /health: is the app up, and does its store answer and take writes?

Everyone gets the status; only operators get the details (the store's error, which names its
address, and the configured model).

The check is one write of a small key with a short expiry, ``chatapp:health:probe``: a Redis
that answers but refuses writes (out of memory under ``noeviction``, a read-only replica, a
failed snapshot with ``stop-writes-on-bgsave-error``) answers PING happily, yet every session
write fails. On a Redis Cluster the probe reaches the node that holds the probe key.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, g

from chatapp import assistant, events
from chatapp.api.endpoint import endpoint
from chatapp.schemas import health_schema
from chatapp.settings import OFFLINE_HINT
from chatapp.storage import StoreUnavailable, get_redis, store_kind
from chatapp.storage.search_engine import engine_of
from chatapp.web.auth import access

bp = Blueprint("health", __name__)

PROBE_KEY = "chatapp:health:probe"
PROBE_TTL_MS = 60_000


def _an_answer(exc: BaseException) -> bool:
    """Did Redis answer (an error reply: OOM, READONLY, MISCONF), rather than not answer at all?

    redis-py raises ResponseError (or a subclass) for an error reply; it is named here, not
    imported, because only chatapp/storage speaks Redis (tests/test_layout.py).
    """
    return any(cls.__name__ == "ResponseError" for cls in type(exc).__mro__)


def probe_store() -> tuple[str, str]:
    """(status, what the store said): ``ok``; ``degraded`` when Redis answers but refuses the
    write; ``unavailable`` when it does not answer."""
    try:
        get_redis().set(PROBE_KEY, str(time.time()), px=PROBE_TTL_MS)
    except StoreUnavailable as exc:
        events.emit(events.store_error, error=exc, where="health")
        if _an_answer(exc):
            return "degraded", f"refuses writes: {type(exc).__name__}: {exc}"
        return "unavailable", f"unavailable: {type(exc).__name__}: {exc}"
    return "ok", "ok"


@bp.get("/health")
@access("public")
@endpoint(responses={200: health_schema, 503: health_schema}, tags=("operations",))
def health():
    """Liveness and store health.

    200 `{"status": "ok"}` when Redis takes a write; 503 with `status` `degraded` when Redis
    answers but refuses writes (out of memory, read-only), `unavailable` when it does not answer.
    Operators (an API key) also get `redis` (what Redis said), `store`, `assistant` (which
    model is configured, or `offline`; the model itself is not called), `search` (the search
    engine: `built-in` or `redis-query-engine`) and, while offline, `assistant_hint`: how to
    connect a model.
    """
    status, said = probe_store()
    answer = {"status": status}
    principal = g.get("principal")
    if principal is not None and principal.is_operator:
        answer.update(
            redis=said,
            store=store_kind(current_app),
            assistant=assistant.describe(current_app),
        )
        if status == "ok":  # (choosing the engine asks Redis)
            answer["search"] = engine_of(current_app)
        if not assistant.is_configured(current_app):
            answer["assistant_hint"] = OFFLINE_HINT
    return health_schema.dump(answer), 200 if status == "ok" else 503
