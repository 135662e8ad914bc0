"""Assistant replies through an OpenAI-compatible server (the fake in tests/fake_llm.py).

What goes upstream (persona prompt, context, model, key), what is stored, JSON and SSE
answers, failures and time-outs, Retry, and the offline backend. The app runs in-process on
the real test redis-server; tests/test_assistant_streaming.py drives a real HTTP server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.http import http_date

from chatapp import events, settings
from chatapp.assistant import OFFLINE_REPLY
from chatapp.personas import load_personas
from chatapp.settings import OFFLINE_HINT, PROJECT_ROOT, ConfigError
from chatapp.storage import SessionStore, make_message
from tests.fake_llm import DEFAULT_USAGE
from tests.helpers import OPERATOR_KEY, AppFactory, CountingConnection
from tests.servers import free_port

MODEL = "fake-model-7b"
API_KEY = "sk-test-secret-key"
TIMEOUT = 1
PERSONAS = load_personas(PROJECT_ROOT / "config" / "personas.yaml")
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def model_app(make_app: AppFactory) -> Callable[..., Flask]:
    """model_app(redis_url, base_url, **config): an app whose model is the one at base_url."""

    def build(redis_url: str, base_url: str, **config: Any) -> Flask:
        settings = {"LLM_MODEL": MODEL, "LLM_API_KEY": API_KEY, "LLM_TIMEOUT": TIMEOUT, "LLM_MAX_HISTORY": 4}
        return make_app(REDIS_URL=redis_url, LLM_BASE_URL=base_url, **{**settings, **config})

    return build


@pytest.fixture
def app(redis_server, redis_db, llm, model_app) -> Flask:
    return model_app(redis_server.url, llm.base_url)


@pytest.fixture
def replies() -> Iterator[list[dict[str, Any]]]:
    """Every model_replied signal sent during the test."""
    seen: list[dict[str, Any]] = []

    def receive(sender: Flask, **kwargs: Any) -> None:
        seen.append(kwargs)

    events.model_replied.connect(receive)
    yield seen
    events.model_replied.disconnect(receive)


def new_session(client: FlaskClient, persona: str = "default") -> str:
    response = client.post("/api/session/create", json={"user_id": "Ada", "persona": persona})
    assert response.status_code == 201
    return response.get_json()["session_id"]


def send(client: FlaskClient, sid: str, content: str = "Hello?", **kwargs: Any):
    return client.post(f"/api/sessions/{sid}/messages", json={"content": content}, **kwargs)


def stream_until_first_piece(client: FlaskClient, sid: str, content: str = "Hi"):
    """Start an SSE reply and read until the first delta arrives; (response, remaining chunks)."""
    response = send(client, sid, content, headers=SSE, buffered=False)
    chunks = iter(response.response)
    received = ""
    while '"text"' not in received:
        received += next(chunks).decode()
    return response, chunks


def history(client: FlaskClient, sid: str) -> list[dict[str, Any]]:
    return client.get(f"/api/session/{sid}/history").get_json()["messages"]


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events_ = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events_.append((fields["event"], json.loads(fields["data"])))
    return events_


# --- what goes upstream ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_each_persona_sends_its_own_system_prompt_first(client, llm, persona):
    sid = new_session(client, persona)

    response = send(client, sid, "I need help")

    assert response.status_code == 201, response.get_json()
    (request,) = llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["messages"][0] == {"role": "system", "content": PERSONAS[persona].system_prompt}
    assert request.body["messages"][-1] == {"role": "user", "content": "I need help"}
    assert response.get_json()["assistant_message"]["metadata"]["persona"] == persona


def test_model_and_key_are_the_configured_ones(client, llm):
    send(client, new_session(client))

    (request,) = llm.requests
    assert request.body["model"] == MODEL
    assert request.body["stream"] is True
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_no_key_configured_sends_a_placeholder_not_an_empty_header(redis_server, redis_db, llm, model_app):
    app = model_app(redis_server.url, llm.base_url, LLM_API_KEY=None)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    assert send(client, new_session(client)).status_code == 201
    assert llm.requests[0].headers["authorization"] == "Bearer not-needed"


def test_settings_from_the_environment_reach_the_model_as_text(redis_server, redis_db, llm, monkeypatch, make_app):
    for name, value in {
        "BASE_URL": llm.base_url,
        "MODEL": "7",
        "API_KEY": "12345",
        "TIMEOUT": "2.5",
        "MAX_SECONDS": "40",
        "MAX_HISTORY": "3",
    }.items():
        monkeypatch.setenv(f"CHATAPP_LLM_{name}", value)
    app = make_app(REDIS_URL=redis_server.url)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    assert send(client, new_session(client)).status_code == 201
    assert (app.config["LLM_TIMEOUT"], app.config["LLM_MAX_SECONDS"], app.config["LLM_MAX_HISTORY"]) == (2.5, 40, 3)
    assert llm.requests[0].body["model"] == "7"
    assert llm.requests[0].headers["authorization"] == "Bearer 12345"


def test_context_is_the_earlier_messages_in_order_up_to_the_limit(client, llm):
    sid = new_session(client)
    for n in range(1, 4):  # six earlier messages: three user/assistant pairs
        llm.reset(pieces=[f"answer {n}"])
        send(client, sid, f"question {n}")
    llm.reset()

    send(client, sid, "question 4")

    sent = llm.requests[0].body["messages"]
    assert sent == [  # LLM_MAX_HISTORY=4: the newest four earlier messages, oldest first
        {"role": "system", "content": PERSONAS["default"].system_prompt},
        {"role": "user", "content": "question 2"},
        {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": "answer 3"},
        {"role": "user", "content": "question 4"},
    ]


def test_no_history_setting_sends_only_the_new_message(redis_server, redis_db, llm, model_app):
    app = model_app(redis_server.url, llm.base_url, LLM_MAX_HISTORY=0)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = new_session(client)
    send(client, sid, "first")
    llm.reset()

    send(client, sid, "second")

    assert [m["role"] for m in llm.requests[0].body["messages"]] == ["system", "user"]


def write_personas(tmp_path: Path, **overrides: Any) -> Path:
    data = {pid: {k: v for k, v in vars(p).items() if v is not None and k != "id"} for pid, p in PERSONAS.items()}
    data["creative_writer"].update(overrides)
    path = tmp_path / "personas.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_persona_may_override_model_temperature_and_max_tokens(redis_server, redis_db, llm, tmp_path, model_app):
    path = write_personas(tmp_path, model="writer-13b", temperature=1.2, max_tokens=300)
    app = model_app(redis_server.url, llm.base_url, PERSONAS_FILE=str(path))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    writer = send(client, new_session(client, "creative_writer")).get_json()
    send(client, new_session(client, "default"))

    overridden, plain = (r.body for r in llm.requests)
    assert (overridden["model"], overridden["temperature"], overridden["max_tokens"]) == ("writer-13b", 1.2, 300)
    assert writer["assistant_message"]["metadata"]["model"] == "writer-13b"
    assert plain["model"] == MODEL
    assert "temperature" not in plain and "max_tokens" not in plain


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "0.5"),
        ("temperature", 2.5),
        ("temperature", True),
        ("max_tokens", 1.5),
        ("max_tokens", 0),
        ("max_tokens", "100"),
        ("model", 7),
        ("model", ""),
    ],
)
def test_persona_overrides_of_the_wrong_type_stop_the_app_naming_them(tmp_path, field, value):
    path = write_personas(tmp_path, **{field: value})

    with pytest.raises(ConfigError, match=f"persona 'creative_writer': field '{field}'"):
        load_personas(path)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"LLM_BASE_URL": "http://127.0.0.1:1/v1"}, "CHATAPP_LLM_MODEL is not"),
        ({"LLM_MODEL": "llama3"}, "CHATAPP_LLM_BASE_URL is not"),
        ({"LLM_BASE_URL": "localhost:11434/v1", "LLM_MODEL": "m"}, "must start with http"),
        ({"LLM_TIMEOUT": 0}, "LLM_TIMEOUT"),
        ({"LLM_TIMEOUT": "60"}, "LLM_TIMEOUT"),
        ({"LLM_MAX_HISTORY": -1}, "LLM_MAX_HISTORY"),
        ({"LLM_MAX_SECONDS": 0}, "LLM_MAX_SECONDS"),
        ({"LLM_MAX_SECONDS": "300"}, "LLM_MAX_SECONDS"),
        ({"LLM_MAX_SECONDS": 90_000}, "LLM_MAX_SECONDS"),
        ({"LLM_TIMEOUT": 30, "LLM_MAX_SECONDS": 10}, r"LLM_MAX_SECONDS \(10\) must be at least LLM_TIMEOUT \(30\)"),
    ],
)
def test_incomplete_or_wrong_model_settings_stop_the_app(make_app, config, expected):
    with pytest.raises(ConfigError, match=expected):
        make_app(REDIS_URL="memory://", **config)


@pytest.mark.parametrize(
    ("config", "expected"),
    [({}, 300), ({"LLM_TIMEOUT": 600}, 600), ({"LLM_MAX_SECONDS": 2.5, "LLM_TIMEOUT": 1}, 2.5)],
)
def test_whole_reply_deadline_defaults_to_300_seconds_or_the_silence_time_out(make_app, config, expected):
    assert make_app(REDIS_URL="memory://", **config).config["LLM_MAX_SECONDS"] == expected


# --- the stored reply ------------------------------------------------------------------------


def test_reply_comes_from_the_model_and_is_stored_once_with_its_metadata(client, llm, replies):
    sid = new_session(client, "technical_support")

    started = time.monotonic()
    body = send(client, sid, "My printer is offline").get_json()
    elapsed_ms = (time.monotonic() - started) * 1000

    reply = body["assistant_message"]
    assert reply["content"] == llm.reply == "Hello from the fake model."
    meta = reply["metadata"]
    assert (meta["model"], meta["persona"], meta["usage"]) == (MODEL, "technical_support", DEFAULT_USAGE)
    assert isinstance(meta["latency_ms"], int) and 0 <= meta["latency_ms"] <= elapsed_ms
    assert meta["finish_reason"] == "stop"
    assert {"offline", "interrupted", "truncated", "incomplete"}.isdisjoint(meta)
    assert history(client, sid) == [body["user_message"], reply]
    assert replies == [
        {"model": MODEL, "persona": "technical_support", "seconds": replies[0]["seconds"], "outcome": "ok"}
    ]


def test_server_that_rejects_stream_options_still_answers_without_usage(client, llm):
    llm.reset("reject_stream_options")

    reply = send(client, new_session(client)).get_json()["assistant_message"]

    assert reply["content"] == llm.reply
    assert "usage" not in reply["metadata"]
    first, second = (r.body for r in llm.requests)
    assert first["stream_options"] == {"include_usage": True} and "stream_options" not in second


def test_server_that_ignores_stream_and_answers_json_still_works(client, llm):
    llm.reset("json")

    reply = send(client, new_session(client)).get_json()["assistant_message"]

    assert reply["content"] == llm.reply
    assert reply["metadata"]["usage"] == DEFAULT_USAGE
    sse = parse_sse(send(client, new_session(client), headers=SSE).get_data(as_text=True))
    assert [e for e, _ in sse] == ["user_message", "delta", "done"]


def test_a_message_with_a_model_costs_one_round_trip_each_way_and_one_per_batch_of_pieces(
    redis_server, redis_db, llm, model_app
):
    counter = type("Counter", (CountingConnection,), {"round_trips": 0})
    app = model_app(redis_server.url, llm.base_url, REDIS_OPTIONS={"connection_class": counter})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = new_session(client)
    send(client, sid, "warm up")

    for headers in ({}, SSE):
        counter.round_trips = 0
        response = send(client, sid, "hello", headers=headers)
        response.get_data()
        # the user message, the claim and the context in one; the reply, its end and the
        # pieces not yet published in another (the worker publishes every 50 ms: one more
        # round trip at most, for a reply this quick)
        assert counter.round_trips in (2, 3)


# --- streaming (in-process; the real-server proofs are in test_assistant_streaming.py) -------


def test_stream_sends_user_message_then_pieces_then_the_stored_reply(client, llm):
    sid = new_session(client)

    response = send(client, sid, "Stream please", headers=SSE)

    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    sse = parse_sse(response.get_data(as_text=True))
    names = [name for name, _ in sse]
    assert names == ["user_message"] + ["delta"] * len(llm.pieces) + ["done"]
    assert sse[0][1]["content"] == "Stream please"
    assert [data["text"] for name, data in sse if name == "delta"] == llm.pieces
    done = sse[-1][1]
    assert done["assistant_message"]["content"] == llm.reply
    assert done["session"]["message_count"] == 2
    assert history(client, sid) == [sse[0][1], done["assistant_message"]]


def test_json_is_the_default_even_for_browsers_accepting_anything(client, llm):
    response = send(client, new_session(client), headers={"Accept": "*/*"})

    assert response.status_code == 201 and response.is_json


def wait_for_reply(client: FlaskClient, sid: str, count: int = 2, seconds: float = 10) -> list[dict[str, Any]]:
    """The history once it holds ``count`` messages (the reply runs on after its poster left)."""
    deadline = time.monotonic() + seconds
    while len(messages := history(client, sid)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return messages


def test_client_leaving_mid_stream_leaves_the_reply_running_and_it_is_stored_whole(client, llm, replies):
    llm.reset("slow")
    sid = new_session(client)

    response, _ = stream_until_first_piece(client, sid, "Tell me a long story")
    assert not llm.finished.is_set()  # the model is still producing (held by the test)
    response.close()  # what a WSGI server does when the browser aborts the fetch
    llm.release.set()

    messages = wait_for_reply(client, sid)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == llm.reply
    assert not {"interrupted", "incomplete", "stopped"} & set(messages[1]["metadata"])
    assert messages[1]["metadata"]["model"] == MODEL
    assert replies[-1]["outcome"] == "ok"


def test_session_deleted_mid_stream_ends_with_a_404_error_event(client, llm):
    llm.reset("slow")
    sid = new_session(client)
    response, chunks = stream_until_first_piece(client, sid)

    assert client.delete(f"/api/sessions/{sid}").status_code == 200
    llm.release.set()
    rest = "".join(chunk.decode() for chunk in chunks)
    response.close()

    name, data = parse_sse(rest)[-1]
    assert (name, data["error"]["code"]) == ("error", 404)
    assert client.get(f"/api/sessions/{sid}").status_code == 404  # nothing recreated it


def test_store_outage_when_the_reply_ends_is_a_503_error_event(client, llm, monkeypatch):
    llm.reset("slow")
    sid = new_session(client)
    response, chunks = stream_until_first_piece(client, sid)

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(SessionStore, "end_reply", store_down)  # Redis goes away mid-reply
    llm.release.set()
    rest = "".join(chunk.decode() for chunk in chunks)
    response.close()

    name, data = parse_sse(rest)[-1]
    assert (name, data["error"]["code"]) == ("error", 503)
    assert "session store is unavailable" in data["error"]["message"]


def test_client_leaving_before_any_text_still_gets_its_reply_stored(client, llm):
    llm.reset("slow")
    sid = new_session(client)

    response = send(client, sid, "Hi", headers=SSE, buffered=False)
    next(iter(response.response))  # the user_message event only
    response.close()
    llm.release.set()

    assert [m["content"] for m in wait_for_reply(client, sid)] == ["Hi", llm.reply]


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "hint"),
    [(500, "try again in a moment"), (401, "CHATAPP_LLM_API_KEY"), (404, "CHATAPP_LLM_MODEL")],
)
def test_upstream_error_is_a_502_that_keeps_the_user_message(client, llm, replies, status, hint):
    llm.reset("fail", status=status)
    sid = new_session(client)

    response = send(client, sid, "Are you there?")

    assert response.status_code == 502
    error = response.get_json()["error"]
    assert (error["code"], error["name"]) == (502, "Bad Gateway")
    assert f"HTTP {status}" in error["message"] and hint in error["message"]
    assert "Your message is saved" in error["message"]
    assert [m["content"] for m in history(client, sid)] == ["Are you there?"]
    assert replies[-1]["outcome"] == "error"
    llm.reset()
    assert send(client, sid, "Still there?").status_code == 201  # the app keeps serving


def test_unreachable_model_server_is_a_502_naming_the_setting(redis_server, redis_db, model_app):
    app = model_app(redis_server.url, f"http://127.0.0.1:{free_port()}/v1")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = new_session(client)

    started = time.monotonic()
    response = send(client, sid)

    assert time.monotonic() - started < TIMEOUT
    assert response.status_code == 502
    assert "CHATAPP_LLM_BASE_URL" in response.get_json()["error"]["message"]
    assert [m["role"] for m in history(client, sid)] == ["user"]


@pytest.mark.parametrize(("mode", "kept"), [("hang", []), ("stall", ["Hello"])])
def test_hung_model_is_a_504_within_the_time_out(client, llm, replies, mode, kept):
    llm.reset(mode)
    sid = new_session(client)

    started = time.monotonic()
    response = send(client, sid, "Hello?")
    elapsed = time.monotonic() - started
    llm.release.set()

    assert response.status_code == 504
    assert TIMEOUT <= elapsed < TIMEOUT + 1.5
    assert "did not answer within 1 second" in response.get_json()["error"]["message"]
    stored = history(client, sid)[1:]
    assert [m["content"] for m in stored] == kept  # a piece that arrived is kept, never as finished
    assert all(m["metadata"]["incomplete"] and m["metadata"]["incomplete_reason"] == "timeout" for m in stored)
    assert replies[-1]["outcome"] == "timeout"


def test_stall_mid_stream_sends_the_piece_then_an_error_event_and_keeps_it_incomplete(client, llm):
    llm.reset("stall")
    sid = new_session(client)

    started = time.monotonic()
    sse = parse_sse(send(client, sid, "Hello?", headers=SSE).get_data(as_text=True))
    elapsed = time.monotonic() - started
    llm.release.set()

    assert [name for name, _ in sse] == ["user_message", "delta", "error"]
    assert sse[-1][1]["error"]["code"] == 504
    assert elapsed < TIMEOUT + 1.5
    partial = sse[-1][1]["assistant_message"]
    assert partial["content"] == "Hello" and partial["metadata"]["incomplete_reason"] == "timeout"
    assert "finish_reason" not in partial["metadata"]
    assert history(client, sid)[-1] == partial


def test_error_event_in_the_stream_carries_the_envelope(client, llm):
    llm.reset("fail", status=500)
    sid = new_session(client)

    sse = parse_sse(send(client, sid, headers=SSE).get_data(as_text=True))

    assert [name for name, _ in sse] == ["user_message", "error"]
    error = sse[1][1]["error"]
    assert (error["code"], error["name"]) == (502, "Bad Gateway") and "Retry" in error["message"]


def test_failure_reported_mid_stream_is_an_error_keeping_the_partial_text_incomplete(client, llm, replies):
    llm.reset("broken")  # a data: {"error": ...} chunk after the first piece
    sid = new_session(client)

    sse = parse_sse(send(client, sid, headers=SSE).get_data(as_text=True))
    plain = send(client, sid)

    assert [name for name, _ in sse] == ["user_message", "delta", "error"]
    assert "failure in the middle of its answer" in sse[-1][1]["error"]["message"]
    assert plain.status_code == 502
    assert [(m["role"], m["content"], m["metadata"].get("incomplete")) for m in history(client, sid)] == [
        ("user", "Hello?", None),
        ("assistant", "Hello", True),
        ("user", "Hello?", None),
        ("assistant", "Hello", True),
    ]
    assert sse[-1][1]["assistant_message"] == history(client, sid)[1]
    assert history(client, sid)[1]["metadata"]["incomplete_reason"] == "upstream_error"
    assert [r["outcome"] for r in replies] == ["error", "error"]


def test_an_empty_reply_is_an_error_not_an_empty_message(client, llm):
    llm.reset(pieces=[""])
    sid = new_session(client)

    assert send(client, sid).status_code == 502
    assert [m["role"] for m in history(client, sid)] == ["user"]


def test_logs_name_the_failure_but_never_the_key_or_the_conversation(client, llm, caplog):
    llm.reset("fail", status=401)
    caplog.set_level(logging.DEBUG)

    send(client, new_session(client), "my secret diary entry")

    assert "ModelHTTPError status=401" in caplog.text
    assert API_KEY not in caplog.text and "secret diary" not in caplog.text


# --- model quirks: how a reply ended ----------------------------------------------------------


def exchange(client: FlaskClient, sid: str, how: str) -> tuple[int, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Send a message as JSON (``json``) or as SSE (``sse``): (status, JSON body, SSE events)."""
    if how == "json":
        response = send(client, sid)
        return response.status_code, response.get_json(), []
    response = send(client, sid, headers=SSE)
    return response.status_code, {}, parse_sse(response.get_data(as_text=True))


@pytest.mark.parametrize("how", ["json", "sse"])
def test_reply_cut_by_the_token_limit_is_stored_marked_truncated(client, llm, replies, how):
    llm.reset(finish_reason="length")
    sid = new_session(client)

    status, body, sse = exchange(client, sid, how)

    stored = history(client, sid)[-1]
    assert stored["content"] == llm.reply  # the reply as far as it went, stored once
    assert (stored["metadata"]["finish_reason"], stored["metadata"]["truncated"]) == ("length", True)
    assert "incomplete" not in stored["metadata"]
    if how == "json":
        assert status == 201 and body["assistant_message"] == stored
    else:
        assert [name for name, _ in sse][-1] == "done" and sse[-1][1]["assistant_message"] == stored
    assert replies[-1]["outcome"] == "ok"


def test_token_limit_reached_before_any_text_is_a_502_naming_max_tokens(client, llm):
    llm.reset(pieces=[""], finish_reason="length")
    sid = new_session(client)

    response = send(client, sid)

    assert response.status_code == 502
    assert "length limit (max_tokens)" in response.get_json()["error"]["message"]
    assert [m["role"] for m in history(client, sid)] == ["user"]


@pytest.mark.parametrize("how", ["json", "sse"])
@pytest.mark.parametrize(
    ("mode", "finish_reason", "reason", "says"),
    [
        ("normal", None, "no_finish_reason", "ended its answer before the model had finished"),
        ("error_line", "stop", "upstream_error", "failure in the middle of its answer"),
        ("drop", "stop", "connection_lost", "broke off in the middle of its answer"),
    ],
    ids=["no-finish-reason", "llama.cpp-error-line", "connection-dropped"],
)
def test_stream_ending_unfinished_is_a_502_keeping_the_partial_text_incomplete(
    client, llm, replies, how, mode, finish_reason, reason, says
):
    llm.reset(mode, finish_reason=finish_reason)
    sid = new_session(client)

    status, body, sse = exchange(client, sid, how)

    messages = history(client, sid)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    partial = messages[-1]
    sent = llm.pieces if mode == "normal" else llm.pieces[:1]
    expected = "".join(sent)
    assert partial["content"] == expected
    assert (partial["metadata"]["incomplete"], partial["metadata"]["incomplete_reason"]) == (True, reason)
    assert "finish_reason" not in partial["metadata"] and "truncated" not in partial["metadata"]
    if how == "json":
        assert status == 502 and says in body["error"]["message"]
    else:
        names = [name for name, _ in sse]
        assert names == ["user_message"] + ["delta"] * len(sent) + ["error"]
        error = sse[-1][1]
        assert error["error"]["code"] == 502 and says in error["error"]["message"]
        assert error["assistant_message"] == partial
    assert replies[-1]["outcome"] == "error"


@pytest.mark.parametrize("how", ["json", "sse"])
@pytest.mark.parametrize(("status", "says"), [(429, "busy or over its quota"), (503, "unavailable for now")])
def test_busy_upstream_is_a_503_passing_on_its_retry_after(client, llm, replies, how, status, says):
    llm.reset("fail", status=status, headers={"Retry-After": "7"})
    sid = new_session(client)

    response = send(client, sid, headers=SSE if how == "sse" else {})

    if how == "json":
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        error = response.get_json()["error"]
    else:
        sse = parse_sse(response.get_data(as_text=True))
        assert [name for name, _ in sse] == ["user_message", "error"]
        error = sse[-1][1]["error"]
        assert error["retry_after"] == 7
    assert error["code"] == 503 and f"HTTP {status}" in error["message"] and says in error["message"]
    assert "try again in 7 seconds" in error["message"] and "Your message is saved" in error["message"]
    assert [m["role"] for m in history(client, sid)] == ["user"]
    assert replies[-1]["outcome"] == "error"
    assert len(llm.requests) == 1  # asked once: the visitor's Retry is the retry


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, None), ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None), ({"Retry-After": "soon"}, None)],
    ids=["none", "a-date-in-the-past", "unreadable"],
)
def test_busy_upstream_without_a_usable_retry_after_sends_none(client, llm, headers, expected):
    llm.reset("fail", status=429, headers=headers)
    sid = new_session(client)

    json_answer = send(client, sid)
    sse = parse_sse(send(client, sid, headers=SSE).get_data(as_text=True))

    assert json_answer.status_code == 503 and json_answer.headers.get("Retry-After") == expected
    assert "wait a moment" in json_answer.get_json()["error"]["message"]
    assert "retry_after" not in sse[-1][1]["error"]


def test_busy_upstream_giving_an_http_date_passes_on_the_seconds_until_then(client, llm):
    when = http_date(time.time() + 120)
    llm.reset("fail", status=503, headers={"Retry-After": when})

    response = send(client, new_session(client))

    assert response.status_code == 503
    assert 110 <= int(response.headers["Retry-After"]) <= 121


OPENAI_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, you sent 9001 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM_TOO_LONG = {  # vLLM's error object is the body itself
    "object": "error",
    "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
    "type": "BadRequestError",
    "code": 400,
}
CODE_ONLY_TOO_LONG = {"error": {"message": "Too many tokens.", "code": "context_length_exceeded"}}
LLAMA_CPP_TOO_LONG = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5000,
        "n_ctx": 4096,
    }
}


@pytest.mark.parametrize("how", ["json", "sse"])
@pytest.mark.parametrize(
    "body",
    [OPENAI_TOO_LONG, VLLM_TOO_LONG, CODE_ONLY_TOO_LONG, LLAMA_CPP_TOO_LONG],
    ids=["openai", "vllm", "error-code", "llama.cpp"],
)
def test_conversation_too_long_for_the_model_is_a_413_saying_so_asked_once(client, llm, replies, how, body):
    llm.reset("fail", status=400, error=body)
    sid = new_session(client)

    response = send(client, sid, headers=SSE if how == "sse" else {})

    if how == "json":
        assert response.status_code == 413
        error = response.get_json()["error"]
    else:
        error = parse_sse(response.get_data(as_text=True))[-1][1]["error"]
    assert error["code"] == 413
    assert "conversation is too long for the language model" in error["message"]
    assert "Start a new session" in error["message"] and "Retry" not in error["message"]
    assert len(llm.requests) == 1  # not sent again without stream_options
    assert "stream_options" in llm.requests[0].body
    assert [m["role"] for m in history(client, sid)] == ["user"]
    assert replies[-1]["outcome"] == "error"


def test_other_400s_are_a_502_asked_once(client, llm):
    llm.reset("fail", status=400, error={"error": {"message": "temperature must be at most 2", "type": "invalid"}})

    response = send(client, new_session(client))

    assert response.status_code == 502 and "HTTP 400" in response.get_json()["error"]["message"]
    assert len(llm.requests) == 1


MAX_SECONDS = 1.5


@pytest.mark.parametrize("how", ["json", "sse"])
@pytest.mark.parametrize("mode", ["keepalive", "dribble"])
def test_reply_going_on_past_the_deadline_is_cut_with_504_keeping_the_text_incomplete(
    redis_server, redis_db, llm, model_app, replies, how, mode
):
    llm.reset(mode, interval=0.1)  # data every 0.1 s: the silence time-out (1 s) never fires
    app = model_app(redis_server.url, llm.base_url, LLM_MAX_SECONDS=MAX_SECONDS)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = new_session(client)

    started = time.monotonic()
    status, body, sse = exchange(client, sid, how)
    elapsed = time.monotonic() - started

    assert MAX_SECONDS <= elapsed < MAX_SECONDS + 1
    assert llm.hung_up.wait(2)  # the app let go of the model's connection
    partial = history(client, sid)[-1]
    assert partial["role"] == "assistant" and partial["content"].startswith(llm.pieces[0])
    if mode == "dribble":
        assert " more1" in partial["content"]
    assert (partial["metadata"]["incomplete"], partial["metadata"]["incomplete_reason"]) == (True, "deadline")
    if how == "json":
        error = body["error"]
        assert status == 504
    else:
        assert [name for name, _ in sse][-1] == "error"
        error = sse[-1][1]["error"]
        assert sse[-1][1]["assistant_message"] == partial
    assert error["code"] == 504 and "did not finish its reply within 1.5 seconds" in error["message"]
    assert "CHATAPP_LLM_MAX_SECONDS" in error["message"]
    assert replies[-1]["outcome"] == "timeout"


THOUGHTS = ["The user", " greets me;", " greet back."]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_streams_as_its_own_events_and_is_kept_in_metadata_not_content(client, llm, field):
    llm.reset(reasoning=THOUGHTS, reasoning_field=field)
    sid = new_session(client)

    sse = parse_sse(send(client, sid, headers=SSE).get_data(as_text=True))

    names = [name for name, _ in sse]
    assert names == ["user_message"] + ["reasoning"] * len(THOUGHTS) + ["delta"] * len(llm.pieces) + ["done"]
    assert [data for name, data in sse if name == "reasoning"] == [{"text": t} for t in THOUGHTS]
    reply = sse[-1][1]["assistant_message"]
    assert reply["content"] == llm.reply  # no thinking in the text
    assert reply["metadata"]["reasoning"] == "".join(THOUGHTS)
    assert history(client, sid)[-1] == reply
    llm.reset()
    send(client, sid, "And?")
    assert "greet back" not in json.dumps(llm.requests[0].body)  # nor in what the model reads next


@pytest.mark.parametrize("mode", ["normal", "json"])
def test_reasoning_is_kept_in_metadata_of_json_answers(client, llm, mode):
    llm.reset(mode, reasoning=THOUGHTS)

    reply = send(client, new_session(client)).get_json()["assistant_message"]

    assert reply["content"] == llm.reply
    assert reply["metadata"]["reasoning"] == "".join(THOUGHTS)


def test_reasoning_reaches_the_client_while_the_model_is_still_thinking(client, llm):
    llm.reset("slow", reasoning=THOUGHTS, hold_at=(0,))  # the model thinks, then waits before the text
    sid = new_session(client)

    response = send(client, sid, headers=SSE, buffered=False)
    chunks = iter(response.response)
    received = ""
    while received.count("event: reasoning") < len(THOUGHTS):
        received += next(chunks).decode()
    assert "event: delta" not in received and not llm.first_sent.is_set()
    llm.release.set()
    received += "".join(chunk.decode() for chunk in chunks)
    response.close()

    assert [name for name, _ in parse_sse(received)][-1] == "done"


def test_retry_after_an_incomplete_reply_asks_again_keeping_the_fragment_as_a_version_left_out(client, llm):
    llm.reset("error_line")
    sid = new_session(client)
    send(client, sid, "Please answer")
    llm.reset()

    response = client.post(f"/api/sessions/{sid}/reply")

    assert response.status_code == 201
    stored = history(client, sid)
    assert [(m["role"], m["metadata"].get("incomplete")) for m in stored] == [("user", None), ("assistant", None)]
    assert [v["metadata"].get("incomplete") for v in stored[1]["versions"]] == [True]  # the fragment, kept
    assert llm.requests[0].body["messages"][1:] == [{"role": "user", "content": "Please answer"}]
    llm.reset()
    send(client, sid, "And then?")
    assert [m["role"] for m in llm.requests[0].body["messages"]] == ["system", "user", "assistant", "user"]


# --- retry -----------------------------------------------------------------------------------


def test_retry_answers_the_last_user_message_without_storing_it_twice(client, llm):
    llm.reset("fail")
    sid = new_session(client)
    send(client, sid, "Please answer")
    llm.reset()

    response = client.post(f"/api/sessions/{sid}/reply")

    assert response.status_code == 201
    body = response.get_json()
    assert body["messages"] == [body["assistant_message"]]
    assert body["assistant_message"]["content"] == llm.reply
    assert [(m["role"], m["content"]) for m in history(client, sid)] == [
        ("user", "Please answer"),
        ("assistant", llm.reply),
    ]
    assert llm.requests[0].body["messages"][1:] == [{"role": "user", "content": "Please answer"}]


def test_retry_streams_without_a_user_message_event(client, llm):
    llm.reset("hang")
    sid = new_session(client)
    send(client, sid, "Please answer")
    llm.reset()

    sse = parse_sse(client.post(f"/api/sessions/{sid}/reply", headers=SSE).get_data(as_text=True))

    assert [name for name, _ in sse] == ["delta"] * len(llm.pieces) + ["done"]
    assert len(history(client, sid)) == 2


def test_retry_is_a_409_when_the_session_has_no_user_message(client, llm):
    sid = new_session(client)

    empty = client.post(f"/api/sessions/{sid}/reply", headers=SSE)

    assert empty.status_code == 409 and empty.is_json
    assert "nothing to retry" in empty.get_json()["error"]["message"]
    assert client.post("/api/sessions/session_nope_1/reply").status_code == 404


def test_openapi_documents_reply_streaming_and_model_errors(client):
    spec = client.get("/api/openapi.json").get_json()

    post = spec["paths"]["/api/sessions/{session_id}/messages"]["post"]
    retry = spec["paths"]["/api/sessions/{session_id}/reply"]["post"]
    assert {"201", "502", "504"} <= set(post["responses"]) and {"201", "409", "502", "504"} <= set(retry["responses"])
    assert "text/event-stream" in post["description"] and "/stop" in post["description"]
    assert {"202", "409"} <= set(post["responses"])  # Prefer: respond-async; a reply already running
    assert retry["summary"].startswith("Regenerate")


def test_openapi_documents_the_reasoning_event_the_reply_metadata_and_busy_or_too_long_models(client):
    spec = client.get("/api/openapi.json").get_json()

    for path in ("/api/sessions/{session_id}/messages", "/api/sessions/{session_id}/reply"):
        responses = spec["paths"][path]["post"]["responses"]
        assert (
            "Retry-After" in responses["503"]["description"]
            and "model server is busy" in responses["503"]["description"]
        )
        assert "context window" in responses["413"]["description"]
        assert "CHATAPP_LLM_MAX_SECONDS" in responses["504"]["description"]
    post = spec["paths"]["/api/sessions/{session_id}/messages"]["post"]["description"]
    for phrase in ("`reasoning` events", "finish_reason", "metadata.truncated", "metadata.incomplete", "retry_after"):
        assert phrase in post
    assert (
        spec["paths"]["/api/sessions"]["get"]["responses"]["503"]["description"] == "The session store is unavailable"
    )
    metadata = spec["components"]["schemas"]["Message"]["properties"]["metadata"]["description"]
    for name in ("finish_reason", "truncated", "reasoning", "incomplete_reason", "deadline"):
        assert name in metadata


def test_health_names_the_model_without_calling_it(client, llm):
    body = client.get("/health").get_json()

    assert body["assistant"] == f"configured: {MODEL}"
    assert llm.requests == []


# --- offline -----------------------------------------------------------------------------------


@pytest.fixture
def offline(redis_server, redis_db, make_app) -> FlaskClient:
    app = make_app(REDIS_URL=redis_server.url)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


def test_offline_answers_json_saying_plainly_it_is_offline(offline, replies, caplog):
    sid = new_session(offline)

    with caplog.at_level(logging.WARNING, logger="chatapp.settings"):
        settings._hinted.clear()
        body = send(offline, sid).get_json()
        send(offline, sid)

    reply = body["assistant_message"]
    assert reply["content"] == OFFLINE_REPLY
    assert reply["content"].startswith("I'm offline: no language model is connected")
    assert "CHATAPP_" not in reply["content"]  # the operator's hint is in the log and /health, not for visitors
    assert reply["metadata"] == {"offline": True}
    assert [r.getMessage() for r in caplog.records].count(OFFLINE_HINT) == 1  # the operator's hint: logged once
    health = offline.get("/health").get_json()
    assert health["assistant"] == "offline" and "CHATAPP_LLM_BASE_URL" in health["assistant_hint"]
    assert replies[-1]["model"] == "offline" and replies[-1]["outcome"] == "ok"


def test_offline_streams_one_piece_and_done(offline):
    sid = new_session(offline)

    sse = parse_sse(send(offline, sid, "Anyone?", headers=SSE).get_data(as_text=True))

    assert [name for name, _ in sse] == ["user_message", "delta", "done"]
    assert sse[1][1] == {"text": OFFLINE_REPLY}
    assert sse[2][1]["assistant_message"]["metadata"]["offline"] is True
    assert len(history(offline, sid)) == 2


def test_offline_notices_are_not_sent_to_a_model_configured_later(redis_server, redis_db, offline, llm, model_app):
    sid = new_session(offline)
    send(offline, sid, "early question")
    app = model_app(redis_server.url, llm.base_url)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    with contextlib.closing(send(client, sid, "now with a model")):
        pass

    roles = [(m["role"], m["content"]) for m in llm.requests[0].body["messages"][1:]]
    assert roles == [("user", "early question"), ("user", "now with a model")]


@pytest.mark.parametrize(
    ("persona", "commitments"),
    [
        ("mental_health_nurse", ["never diagnose", "emergency services", "crisis line", "not a replacement"]),
        ("technical_support", ["exact error message", "Ask for the missing details", "backup"]),
        ("creative_writer", ["write it", "rather than describing", "write anyway"]),
    ],
)
def test_persona_prompts_keep_the_commitments_the_issue_asks_for(persona, commitments):
    prompt = " ".join(PERSONAS[persona].system_prompt.split())

    for phrase in commitments:
        assert phrase in prompt


# --- storage: the user message and the context in one round trip -----------------------------


def test_append_and_read_returns_the_newest_messages_in_one_round_trip(redis_server, redis_db):
    counter = type("Counter", (CountingConnection,), {"round_trips": 0})
    pool = redis.ConnectionPool(port=redis_server.port, connection_class=counter, decode_responses=True)
    store = SessionStore(redis.Redis(connection_pool=pool), timeout_seconds=3600)
    store.load_scripts()
    sid = store.create_session("Ada", "default")["session_id"]
    store.append_messages(sid, [make_message("user", f"m{n}") for n in range(5)])
    counter.round_trips = 0

    session, recent = store.append_and_read(sid, [make_message("user", "new")], limit=3)

    assert counter.round_trips == 1
    assert [m["content"] for m in recent] == ["m3", "m4", "new"]
    assert session["message_count"] == 6
    assert store.append_and_read(sid, [make_message("user", "x")], limit=0)[1][0]["content"] == "x"
    assert store.append_and_read(sid, [make_message("user", "x")], limit=3, owner="someone else") is None
    assert store.append_and_read("session_missing_1", [make_message("user", "x")], limit=3) is None
    pool.disconnect()
