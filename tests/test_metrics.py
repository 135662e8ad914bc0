"""GET /metrics: who may read it, and that the numbers follow what happened."""

from __future__ import annotations

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from chatapp import events
from chatapp.settings import ConfigError
from tests.helpers import OPERATOR_KEY
from tests.servers import free_port

KEY = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def scrape(app: Flask) -> dict[tuple[str, frozenset], float]:
    response = app.test_client().get("/metrics", headers=KEY)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- access ---------------------------------------------------------------------------------


def test_metrics_with_an_operator_key_are_prometheus_text(memory_app):
    response = memory_app.test_client().get("/metrics", headers=KEY)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE chatapp_http_requests_total counter" in response.get_data(as_text=True)


def test_metrics_without_a_key_answer_401_json(memory_app):
    response = memory_app.test_client().get("/metrics")

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == 401
    assert "Bearer" in response.get_json()["error"]["message"]


def test_metrics_with_a_wrong_key_answer_401_json(memory_app):
    response = memory_app.test_client().get("/metrics", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401 and response.mimetype == "application/json"


def test_metrics_are_not_for_visitors(memory_app):
    client = memory_app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = "user_visitor"

    response = client.get("/metrics")

    assert response.status_code == 403 and response.get_json()["error"]["message"] == "Metrics are for operators."


def test_open_api_mode_does_not_open_metrics(make_app):
    app = make_app(REDIS_URL="memory://", OPEN_API=True)
    assert app.test_client().get("/metrics").status_code == 401


@pytest.mark.parametrize(
    ("allow", "status"),
    [
        ("127.0.0.0/8", 200),
        ("10.0.0.0/8, 127.0.0.1/32", 200),
        ("::1/128,127.0.0.1", 200),
        ("10.0.0.0/8", 401),
        ("", 401),
    ],
)
def test_allowed_networks_read_without_a_key(make_app, allow, status):
    app = make_app(REDIS_URL="memory://", METRICS_ALLOW=allow)
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == status


def test_a_bad_allowed_network_stops_the_app_at_start(make_app):
    with pytest.raises(ConfigError, match="CHATAPP_METRICS_ALLOW: 'localhost' is not a network"):
        make_app(REDIS_URL="memory://", METRICS_ALLOW="127.0.0.1/32,localhost")


# --- what is counted ------------------------------------------------------------------------


def test_requests_are_counted_by_url_rule_and_status_not_raw_path(memory_app):
    client = memory_app.test_client()
    sid = client.post("/api/session/create", json={}, headers=KEY).get_json()["session_id"]
    client.get(f"/api/sessions/{sid}", headers=KEY)
    client.get("/api/sessions/session_missing_1_x", headers=KEY)
    client.get("/api/sessions/session_missing_2_x", headers=KEY)
    client.get("/nowhere/at/all")

    samples = scrape(memory_app)

    rule = "/api/sessions/<session_id>"
    assert value(samples, "chatapp_http_requests_total", method="GET", endpoint=rule, status="200") == 1
    assert value(samples, "chatapp_http_requests_total", method="GET", endpoint=rule, status="404") == 2
    assert value(samples, "chatapp_http_requests_total", method="GET", endpoint="<unmatched>", status="404") == 1
    assert (
        value(
            samples,
            "chatapp_http_request_duration_seconds_count",
            method="POST",
            endpoint="/api/session/create",
            status="201",
        )
        == 1
    )
    assert not any(sid in str(labels) for _, labels in samples)


def test_sessions_created_and_messages_stored_follow_the_events(memory_app):
    client = memory_app.test_client()
    sid = client.post("/api/session/create", json={"persona": "technical_support"}, headers=KEY).get_json()[
        "session_id"
    ]
    client.post("/api/session/create", json={}, headers=KEY)
    for text in ("one", "two"):
        client.post(f"/api/sessions/{sid}/messages", json={"content": text}, headers=KEY)

    samples = scrape(memory_app)

    assert value(samples, "chatapp_sessions_created_total", persona="technical_support") == 1
    assert value(samples, "chatapp_sessions_created_total", persona="default") == 1
    assert value(samples, "chatapp_messages_stored_total") == 4  # two user messages, two replies


def test_model_latency_and_errors_follow_model_replied(memory_app):
    for seconds, outcome in ((0.4, "ok"), (1.5, "ok"), (60.0, "timeout"), (0.2, "error"), (3.0, "interrupted")):
        events.model_replied.send(memory_app, model="m1", persona="default", seconds=seconds, outcome=outcome)

    samples = scrape(memory_app)

    ok = {"model": "m1", "persona": "default", "outcome": "ok"}
    assert value(samples, "chatapp_model_reply_duration_seconds_count", **ok) == 2
    assert value(samples, "chatapp_model_reply_duration_seconds_sum", **ok) == pytest.approx(1.9)
    assert value(samples, "chatapp_model_reply_duration_seconds_bucket", **ok, le="0.5") == 1
    assert value(samples, "chatapp_model_errors_total", model="m1", persona="default", outcome="timeout") == 1
    assert value(samples, "chatapp_model_errors_total", model="m1", persona="default", outcome="error") == 1
    assert value(samples, "chatapp_model_errors_total", model="m1", persona="default", outcome="interrupted") == 0


def test_redis_errors_are_counted_where_they_happen(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    client = app.test_client()
    assert client.get("/api/sessions", headers=KEY).status_code == 503
    assert client.post("/api/session/create", json={}, headers=KEY).status_code == 503
    assert client.get("/health").status_code == 503

    samples = scrape(app)

    assert value(samples, "chatapp_redis_errors_total", error="ConnectionError", where="request") == 2
    assert value(samples, "chatapp_redis_errors_total", error="ConnectionError", where="health") == 1
    assert value(samples, "chatapp_http_requests_total", method="GET", endpoint="/api/sessions", status="503") == 1


def test_each_app_counts_on_its_own(make_app):
    first, second = make_app(REDIS_URL="memory://"), make_app(REDIS_URL="memory://")
    first.test_client().post("/api/session/create", json={}, headers=KEY)

    assert value(scrape(first), "chatapp_sessions_created_total", persona="default") == 1
    assert value(scrape(second), "chatapp_sessions_created_total", persona="default") == 0
