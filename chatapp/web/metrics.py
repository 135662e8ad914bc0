"""GET /metrics: Prometheus text for operators.

Each app has its own registry (test apps never share counters); the metrics listen to
chatapp/events.py and to request hooks, so views know nothing about them. Readable with
an operator key (``Authorization: Bearer``) or from a network in CHATAPP_METRICS_ALLOW.

Under gunicorn each worker counts on its own; set PROMETHEUS_MULTIPROC_DIR (an empty
directory, wiped before each start) and /metrics adds up every worker's numbers.
"""

from __future__ import annotations

import ipaddress
import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from chatapp import events
from chatapp.errors import answers_json
from chatapp.settings import ConfigError
from chatapp.web.auth import access

bp = Blueprint("metrics", __name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
MODEL_ERRORS = frozenset({"error", "timeout"})
# Label values come from fixed sets, whatever a client sends: gunicorn passes any upper-case
# word as a method, and a series per invented method would grow /metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


class Metrics:
    """The app's metric objects, registered in the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "chatapp_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "chatapp_http_request_duration_seconds",
            "Time to the response's headers (a stream's full length is in the request log).",
            ["method", "endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_latency = Histogram(
            "chatapp_model_reply_duration_seconds",
            "Time for the model to reply, by outcome.",
            ["model", "persona", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter(
            "chatapp_model_errors",
            "Model calls that failed or timed out.",
            ["model", "persona", "outcome"],
            registry=r,
        )
        self.sessions_created = Counter(
            "chatapp_sessions_created",
            "Sessions created.",
            ["persona"],
            registry=r,
        )
        self.messages_stored = Counter("chatapp_messages_stored", "Messages stored.", registry=r)
        # Summed over the live workers (a dead worker's count goes with it).
        self.live = Gauge(
            "chatapp_live",
            "Replies being written (kind=replies) and live channels open (kind=listeners), now.",
            ["kind"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.redis_errors = Counter(
            "chatapp_redis_errors",
            "Redis failures met by requests and health checks.",
            ["error", "where"],
            registry=r,
        )

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            return generate_latest(combined)
        return generate_latest(self.registry)


def _metrics(app: Any) -> Metrics | None:
    return getattr(app, "extensions", {}).get("metrics")


# --- listeners (connected once; each looks up the sending app's metrics) ------------------


def _on_session_created(sender: Any, session: dict[str, Any], **_: Any) -> None:
    if m := _metrics(sender):
        m.sessions_created.labels(persona=session.get("persona", "")).inc()


def _on_messages_stored(sender: Any, count: int = 1, **_: Any) -> None:
    if m := _metrics(sender):
        m.messages_stored.inc(count)


def _on_model_replied(
    sender: Any,
    model: str | None = None,
    persona: str | None = None,
    seconds: float = 0.0,
    outcome: str = "ok",
    **_: Any,
) -> None:
    if m := _metrics(sender):
        labels = {"model": model or "none", "persona": persona or "none", "outcome": outcome}
        m.model_latency.labels(**labels).observe(seconds)
        if outcome in MODEL_ERRORS:
            m.model_errors.labels(**labels).inc()


def _on_live_changed(sender: Any, kind: str = "replies", delta: int = 0, **_: Any) -> None:
    if m := _metrics(sender):
        m.live.labels(kind=kind).inc(delta)


def _on_store_error(sender: Any, error: BaseException, where: str = "request", **_: Any) -> None:
    if m := _metrics(sender):
        m.redis_errors.labels(error=type(error).__name__, where=where).inc()


# --- request hooks ------------------------------------------------------------------------


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    m = _metrics(current_app)
    started = g.get("metrics_started")
    if m is not None and started is not None:
        # The url rule, never the raw path: ids in paths would make a series per session.
        labels = {
            "method": method_label(request.method),
            "endpoint": request.url_rule.rule if request.url_rule else "<unmatched>",
            "status": str(response.status_code),
        }
        m.requests.labels(**labels).inc()
        m.latency.labels(**labels).observe(time.perf_counter() - started)
    return response


# --- the endpoint -------------------------------------------------------------------------


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = current_app.config.get("METRICS_ALLOW") or ""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in str(raw).split(",") if part.strip()]


def _from_allowed_network() -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


@bp.get("/metrics")
@access("public")  # checked below: an operator key or an allowed network
@answers_json
def metrics() -> Response:
    """Prometheus text format; operator key or an allowed network."""
    principal = g.get("principal")
    # An operator key proper, not CHATAPP_OPEN_API's everyone-is-an-operator mode.
    has_key = principal is not None and principal.is_operator and "Authorization" in request.headers
    if not (has_key or _from_allowed_network()):
        if principal is not None and not principal.is_operator:
            abort(403, "Metrics are for operators.")
        abort(401, "Send Authorization: Bearer <operator key> to read metrics.")
    m = _metrics(current_app)
    assert m is not None
    return Response(m.exposition(), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    _allowed_on_start(app)
    app.extensions["metrics"] = Metrics()
    app.before_request(_start_timer)
    app.after_request(_observe)
    events.session_created.connect(_on_session_created)
    events.messages_stored.connect(_on_messages_stored)
    events.model_replied.connect(_on_model_replied)
    events.store_error.connect(_on_store_error)
    events.live_changed.connect(_on_live_changed)
    app.register_blueprint(bp)


def _allowed_on_start(app: Flask) -> None:
    """A typo in CHATAPP_METRICS_ALLOW stops the app at start, not at the first scrape."""
    for part in str(app.config.get("METRICS_ALLOW") or "").split(","):
        if part.strip():
            try:
                ipaddress.ip_network(part.strip(), strict=False)
            except ValueError as exc:
                raise ConfigError(f"CHATAPP_METRICS_ALLOW: {part.strip()!r} is not a network ({exc})") from exc
