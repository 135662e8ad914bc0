"""Replies as jobs and each session's live channel, in-process against a real redis-server.

(The real-gunicorn proofs are in test_live_server.py; the browser's in tests/browser.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatapp.storage import get_redis, get_store, make_message
from chatapp.storage.keys import events_key
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY, AppFactory, Visitor
from tests.live_channel import Channel

SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def app(redis_server, redis_db, llm, make_app: AppFactory) -> Flask:
    return make_app(
        REDIS_URL=redis_server.url,
        LLM_BASE_URL=llm.base_url,
        LLM_MODEL="fake-model",
        LLM_TIMEOUT=3,
        SSE_KEEPALIVE=0.2,
        RATELIMIT_ENABLED=False,
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


def new_session(client: FlaskClient, user: str = "Ada") -> str:
    response = client.post("/api/session/create", json={"user_id": user})
    assert response.status_code == 201
    return response.get_json()["session_id"]


def post(client: FlaskClient, sid: str, content: str = "Hi", **kwargs: Any):
    return client.post(f"/api/sessions/{sid}/messages", json={"content": content}, **kwargs)


def stored(client: FlaskClient, sid: str) -> list[dict[str, Any]]:
    return client.get(f"/api/sessions/{sid}/messages?limit=500").get_json()["messages"]


def eventually(check: Callable[[], Any], seconds: float = 5) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def start_slow_reply(client: FlaskClient, sid: str, llm: FakeLLM, content: str = "Tell me") -> Any:
    """A streamed post whose model holds after its first piece; read up to that piece."""
    llm.reset("slow", pieces=["One", " two", " three", " four"], interval=0.01)
    response = post(client, sid, content, headers=SSE, buffered=False)
    chunks = iter(response.response)
    seen = ""
    while '"delta"' not in seen and '"text"' not in seen:
        seen += next(chunks).decode()
    return response


# --- the channel ---------------------------------------------------------------------------


def test_a_listener_gets_the_message_the_reply_pieces_and_the_end_each_with_an_id(client, llm):
    sid = new_session(client)
    channel = Channel(client, sid)
    assert channel.status == 200 and channel.response.mimetype == "text/event-stream"

    assert post(client, sid, "Hello there").status_code == 201
    events = channel.until("done")
    channel.close()

    kinds = [kind for _, kind, _ in events]
    assert kinds[:2] == ["message", "reply"] and kinds[-1] == "done" and "delta" in kinds
    assert events[0][2]["role"] == "user" and events[0][2]["content"] == "Hello there"
    reply_id = events[1][2]["reply_id"]
    deltas = "".join(data["text"] for _, kind, data in events if kind == "delta")
    done = events[-1][2]
    assert deltas == llm.reply == done["assistant_message"]["content"]
    assert done["reply_id"] == reply_id and done["session"]["message_count"] == 2
    ids = [event_id for event_id, _, _ in events]
    assert all(ids) and len(set(ids)) == len(ids)  # every event has its own id


def test_a_late_listener_first_gets_the_text_so_far_then_the_rest(client, llm):
    sid = new_session(client)
    poster = start_slow_reply(client, sid, llm)

    channel = Channel(client, sid)
    first = [channel.next(), channel.next()]
    assert [kind for _, kind, _ in first] == ["reply", "delta"]
    assert first[1][2]["text"] == "One"  # the text so far, as one delta
    llm.release.set()
    rest = channel.until("done")
    poster.close()
    channel.close()

    later = "".join(data["text"] for _, kind, data in rest if kind == "delta")
    assert "One" + later == llm.reply == rest[-1][2]["assistant_message"]["content"]


def test_last_event_id_resumes_with_nothing_lost_or_repeated(client, llm):
    sid = new_session(client)
    channel = Channel(client, sid)
    post(client, sid, "first")
    everything = channel.until("done")
    channel.close()

    for cut in (0, 2, len(everything) - 2):
        resumed = Channel(client, sid, headers={"Last-Event-ID": everything[cut][0]})
        again = resumed.until("done")
        assert again == everything[cut + 1 :]
        assert resumed.quiet() == []
        resumed.close()


def test_a_listener_away_longer_than_the_stream_keeps_is_told_to_reload(client, llm, app):
    sid = new_session(client)
    channel = Channel(client, sid)
    post(client, sid, "first")
    early = channel.until("done")
    channel.close()
    post(client, sid, "second")
    redis = get_redis(app)
    key = events_key(sid)
    newest = redis.xrevrange(key, count=1)[0][0]
    redis.xtrim(key, minid=newest, approximate=False)  # as if trimmed by length or time

    resumed = Channel(client, sid, headers={"Last-Event-ID": early[2][0]})
    event_id, kind, data = resumed.next()
    resumed.close()
    assert (kind, data, event_id) == ("reset", {"session_id": sid}, newest)


def test_session_changes_reach_the_listener_and_deleting_ends_the_stream(client):
    sid = new_session(client)
    channel = Channel(client, sid)

    client.patch(f"/api/sessions/{sid}", json={"display_name": "Trip", "archived": True})
    client.delete(f"/api/session/{sid}/clear")
    client.delete(f"/api/sessions/{sid}")

    changes = [channel.next(), channel.next(), channel.next()]
    assert [data["changes"] for _, _, data in changes] == [["archived", "renamed"], ["cleared"], ["deleted"]]
    assert changes[0][2]["session"]["display_name"] == "Trip" and changes[0][2]["session"]["archived"] is True
    assert channel.ended.wait(5)  # the server ended the stream after `deleted`


def test_idle_channel_sends_keep_alive_comments(client):
    sid = new_session(client)
    channel = Channel(client, sid)
    assert eventually(lambda: len(channel.comments) >= 2, seconds=3)
    channel.close()
    assert set(channel.comments) == {"keep-alive"}


@pytest.mark.parametrize("bad", ["yesterday", "1-2-3", "-1-0", "1" * 30 + "-0"])
def test_a_malformed_last_event_id_is_a_400(client, bad):
    sid = new_session(client)
    response = client.get(f"/api/sessions/{sid}/events", headers={"Last-Event-ID": bad})
    assert response.status_code == 400 and "Last-Event-ID" in response.get_json()["error"]["message"]
    assert client.get(f"/api/sessions/{sid}/events?last_event_id={bad}").status_code in (400, 422)


def test_a_visitor_cannot_listen_to_or_stop_anothers_session(app, client, llm):
    sid = new_session(client, user="someone else")
    visitor = Visitor(app)
    assert visitor.request("GET", f"/api/sessions/{sid}/events").status_code == 404
    assert visitor.request("POST", f"/api/sessions/{sid}/stop").status_code == 404
    assert visitor.request("POST", f"/api/sessions/{sid}/stop", csrf=False).status_code in (400, 403)
    assert client.get("/api/sessions/session_nobody_1_00aaaaaaaaaa/events").status_code == 404


# --- jobs: one at a time, and Stop ------------------------------------------------------------


def test_a_second_post_while_a_reply_runs_is_a_409_naming_it_and_stores_nothing(client, llm):
    sid = new_session(client)
    poster = start_slow_reply(client, sid, llm)

    second = post(client, sid, "me too")
    retry = client.post(f"/api/sessions/{sid}/reply")
    llm.release.set()
    poster.close()

    assert second.status_code == 409 and retry.status_code == 409
    running = second.get_json()["error"]["fields"]["reply_id"][0]
    assert running.startswith("reply_") and running in second.get_json()["error"]["message"]
    messages = eventually(lambda: (m := stored(client, sid)) and len(m) == 2 and m)
    assert [m["content"] for m in messages] == ["Tell me", llm.reply]
    assert post(client, sid, "now me").status_code == 201  # free again once it ended


def test_stop_ends_the_reply_within_a_second_stored_marked_stopped(client, llm):
    sid = new_session(client)
    channel = Channel(client, sid)
    poster = start_slow_reply(client, sid, llm)  # the model holds after "One" until released

    asked = time.monotonic()
    response = client.post(f"/api/sessions/{sid}/stop")
    events = channel.until("done", timeout=3)
    took = time.monotonic() - asked
    llm.release.set()
    poster.close()
    channel.close()

    assert response.status_code == 202 and response.get_json()["stopping"] is True
    assert took < 1
    done = events[-1][2]
    assert done["stopped"] is True and done["reply_id"] == response.get_json()["reply_id"]
    reply = stored(client, sid)[-1]
    assert reply["content"] == "One" and reply["metadata"]["stopped"] is True
    assert client.post(f"/api/sessions/{sid}/stop").status_code == 409  # nothing runs now


def test_stop_before_any_text_stores_no_reply_and_ends_in_an_error_saying_so(client, llm):
    llm.reset("hang")
    sid = new_session(client)
    channel = Channel(client, sid)
    poster = post(client, sid, "Hi", headers=SSE, buffered=False)
    channel.until("reply")

    assert client.post(f"/api/sessions/{sid}/stop").status_code == 202
    event_id, kind, data = channel.until("error")[-1]
    poster.close()
    channel.close()

    assert data["error"]["code"] == 409 and "Stopped before" in data["error"]["message"]
    assert data["stopped"] is True and data["assistant_message"] is None
    assert [m["role"] for m in stored(client, sid)] == ["user"]


def test_the_poster_of_a_stopped_reply_gets_its_done_event(client, llm):
    sid = new_session(client)
    poster = start_slow_reply(client, sid, llm)
    client.post(f"/api/sessions/{sid}/stop")
    rest = b"".join(poster.response).decode()
    llm.release.set()
    assert "event: done" in rest and '"stopped":true' in rest


def test_respond_async_answers_202_at_once_and_the_channel_carries_the_reply(client, llm):
    sid = new_session(client)
    channel = Channel(client, sid)
    llm.reset("slow")

    response = post(client, sid, "Hi", headers={"Prefer": "respond-async"})
    assert response.status_code == 202  # before the model finished: it is held by the test
    started = response.get_json()
    assert started["session_id"] == sid and started["user_message"]["content"] == "Hi"
    llm.release.set()
    events = channel.until("done")
    channel.close()
    assert events[-1][2]["reply_id"] == started["reply_id"]
    assert events[-1][2]["assistant_message"]["content"] == llm.reply

    assert events[-1][2]["index"] == 1 and events[-1][2]["assistant_message"]["index"] == 1
    assert [e[2]["index"] for e in events if e[1] == "message"] == [0]  # each stored message says where


def test_a_regenerated_reply_is_told_as_replacing_the_last_one_and_stored_in_its_place(client, llm):
    sid = new_session(client)
    post(client, sid, "Hi")
    channel = Channel(client, sid)
    llm.reset(pieces=["Second", " answer"])

    regenerated = client.post(f"/api/sessions/{sid}/reply", headers={"Prefer": "respond-async"})

    assert regenerated.status_code == 202
    events = channel.until("done")
    channel.close()
    began = next(data for _, kind, data in events if kind == "reply")
    assert began["replaces"] == 1  # the reply at index 1 is being replaced
    done = events[-1][2]
    assert done["index"] == 1 and done["assistant_message"]["content"] == "Second answer"
    assert done["assistant_message"]["version"] == 1 and len(done["assistant_message"]["versions"]) == 1
    stored = client.get(f"/api/sessions/{sid}/messages").get_json()
    assert [m["content"] for m in stored["messages"]] == ["Hi", "Second answer"]


def test_bulk_appends_that_nobody_watches_can_leave_the_channel_out(app, client):
    sid = new_session(client)
    store = get_store(app)
    redis = get_redis(app)
    store.append_messages(sid, [make_message("user", "loaded")], announced=False)
    assert not redis.exists(events_key(sid))
    store.append_messages(sid, [make_message("user", "said")])
    assert [fields["e"] for _, fields in redis.xrange(events_key(sid))] == ["message"]


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(header=st.text(max_size=40), query=st.text(max_size=40))
def test_whatever_a_client_sends_as_where_to_resume_is_a_200_or_a_clear_4xx(app, client, header, query):
    sid = new_session(client)
    headers = {"Last-Event-ID": header} if header.isascii() and header.isprintable() else {}
    response = client.get(f"/api/sessions/{sid}/events", query_string={"last_event_id": query}, headers=headers)
    try:
        assert response.status_code in (200, 400, 422), response.status_code
        if response.status_code != 200:
            assert response.get_json()["error"]["message"]
    finally:
        response.close()  # a 200 is a subscription: never started here, so it holds nothing


def test_metrics_count_the_open_channels_and_the_replies_being_written(client, llm):
    def live(kind: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        line = next(line for line in text.splitlines() if line.startswith(f'chatapp_live{{kind="{kind}"}}'))
        return float(line.split()[-1])

    sid = new_session(client)
    channel = Channel(client, sid)
    assert eventually(lambda: live("listeners") == 1)  # once the channel's answer has started
    poster = start_slow_reply(client, sid, llm)
    assert live("replies") == 1

    llm.release.set()
    channel.until("done")
    channel.close()
    poster.close()
    assert eventually(lambda: (live("listeners"), live("replies")) == (0, 0))


def test_a_listener_is_told_when_the_reply_it_watches_is_lost(app, client):
    sid = new_session(client)
    channel = Channel(client, sid)
    store = get_store(app)
    store.begin_reply(sid, "reply_0123456789abcdef", [make_message("user", "anyone?")], 0, None)  # no job
    assert channel.until("reply")[-1][2]["reply_id"] == "reply_0123456789abcdef"

    get_redis(app).delete(f"{events_key(sid).rsplit(':e:', 1)[0]}:r:{sid}")  # its worker died: the claim ran out
    event_id, kind, data = channel.next(timeout=3)
    channel.close()

    assert (event_id, kind, data["reply_id"], data["error"]["code"]) == (None, "error", "reply_0123456789abcdef", 503)
    assert "lost" in data["error"]["message"] and data["assistant_message"] is None


def test_a_late_listener_learns_when_the_running_reply_started(client, llm):
    sid = new_session(client)
    poster = start_slow_reply(client, sid, llm)
    channel = Channel(client, sid)
    _, kind, data = channel.next()
    llm.release.set()
    poster.close()
    channel.close()
    assert kind == "reply" and data["started_at"].startswith("20")
