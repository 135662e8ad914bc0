"""Regenerate, edit and versions through the API, on a real redis-server and a Redis Cluster.

A regenerated reply takes the place of the old one, which is kept as an earlier version;
an edited user message keeps its earlier text with the replies that followed it; showing
another version is stored, and it is what the model reads next. Every write is one script
over the session's shard (so it works on a cluster), compares what it was built on, and
refuses bad input with a 4xx that changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chatapp.storage import HistoryChanged, get_store, make_message
from tests.fake_llm import FakeLLM
from tests.helpers import OPERATOR_KEY, AppFactory, Visitor
from tests.live_channel import Channel
from tests.servers import RedisServer
from tests.test_cluster import rc  # noqa: F401 - the fixture (the cluster itself is conftest's)

pytestmark = pytest.mark.redis
SETTINGS = {"LLM_MODEL": "fake-versions", "LLM_TIMEOUT": 5, "RATELIMIT_ENABLED": False, "SSE_KEEPALIVE": 0.2}


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def app(request: pytest.FixtureRequest, fake: FakeLLM, make_app: AppFactory) -> Iterator[Flask]:
    """The app with the fake model, on the suite's redis-server or on the module's cluster."""
    fake.reset()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_db")  # emptied
        yield make_app(REDIS_URL=server.url, LLM_BASE_URL=fake.base_url, **SETTINGS)
    else:
        started = request.getfixturevalue("cluster")
        request.getfixturevalue("rc")  # emptied
        yield make_app(REDIS_URL=started.url, REDIS_CLUSTER=True, LLM_BASE_URL=fake.base_url, **SETTINGS)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return client


@pytest.fixture
def llm(fake: FakeLLM) -> FakeLLM:
    return fake.reset()


def new_session(client: FlaskClient) -> str:
    response = client.post("/api/session/create", json={"user_id": "Ada", "persona": "default"})
    assert response.status_code == 201
    return response.get_json()["session_id"]


def answer(llm: FakeLLM, text: str) -> None:
    llm.reset(pieces=[text])


def send(client: FlaskClient, sid: str, content: str) -> dict[str, Any]:
    response = client.post(f"/api/sessions/{sid}/messages", json={"content": content})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def regenerate(client: FlaskClient, sid: str) -> dict[str, Any]:
    response = client.post(f"/api/sessions/{sid}/reply")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["assistant_message"]


def show(client: FlaskClient, sid: str, index: int, version: Any) -> Any:
    return client.put(f"/api/sessions/{sid}/messages/{index}/version", json={"version": version})


def messages(client: FlaskClient, sid: str) -> list[dict[str, Any]]:
    return client.get(f"/api/sessions/{sid}/messages").get_json()["messages"]


def upstream(llm: FakeLLM) -> list[tuple[str, str]]:
    """What the model was last sent, less the system prompt."""
    return [(m["role"], m["content"]) for m in llm.requests[-1].body["messages"][1:]]


def test_regenerating_twice_keeps_three_versions_the_newest_shown(client, llm):
    sid = new_session(client)
    answer(llm, "First reply")
    send(client, sid, "Tell me a joke")
    answer(llm, "Second reply")
    regenerate(client, sid)
    answer(llm, "Third reply")

    reply = regenerate(client, sid)

    assert (reply["content"], reply["version"]) == ("Third reply", 2)
    assert [v["content"] for v in reply["versions"]] == ["First reply", "Second reply"]
    stored = messages(client, sid)
    assert [m["content"] for m in stored] == ["Tell me a joke", "Third reply"]  # the seed's shape: shown ones
    assert stored[1] == reply
    assert upstream(llm) == [("user", "Tell me a joke")]  # the old replies are not the model's context


def test_showing_an_earlier_reply_is_stored_and_is_what_the_model_reads_next(client, llm):
    sid = new_session(client)
    answer(llm, "First reply")
    send(client, sid, "Tell me a joke")
    answer(llm, "Second reply")
    regenerate(client, sid)

    response = show(client, sid, 1, 0)

    assert response.status_code == 200
    body = response.get_json()
    assert body["index"] == 1 and [m["content"] for m in body["messages"]] == ["First reply"]
    assert body["messages"][0]["version"] == 0 and body["messages"][0]["versions"][0]["content"] == "Second reply"
    assert [m["content"] for m in messages(client, sid)] == ["Tell me a joke", "First reply"]
    answer(llm, "Third reply")
    send(client, sid, "Another")
    assert upstream(llm) == [("user", "Tell me a joke"), ("assistant", "First reply"), ("user", "Another")]


def test_editing_the_last_message_asks_again_and_keeps_the_old_turn_as_a_version(client, llm):
    sid = new_session(client)
    answer(llm, "Paris")
    send(client, sid, "Capital of France?")
    answer(llm, "Rome")

    response = client.put(f"/api/sessions/{sid}/messages/0", json={"content": "Capital of Italy?"})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["user_message"]["content"] == "Capital of Italy?" and body["assistant_message"]["content"] == "Rome"
    assert upstream(llm) == [("user", "Capital of Italy?")]
    stored = messages(client, sid)
    assert [m["content"] for m in stored] == ["Capital of Italy?", "Rome"]
    (old,) = stored[0]["versions"]
    assert old["content"] == "Capital of France?" and [r["content"] for r in old["replies"]] == ["Paris"]
    assert stored[0]["version"] == 1

    back = show(client, sid, 0, 0)  # the old question brings its answer back; the new turn is kept

    assert back.status_code == 200
    assert [m["content"] for m in back.get_json()["messages"]] == ["Capital of France?", "Paris"]
    stored = messages(client, sid)
    assert [m["content"] for m in stored] == ["Capital of France?", "Paris"]
    assert [r["content"] for r in stored[0]["versions"][0]["replies"]] == ["Rome"]
    assert show(client, sid, 0, 1).status_code == 200
    assert [m["content"] for m in messages(client, sid)] == ["Capital of Italy?", "Rome"]


def test_regenerating_after_a_stop_or_a_failure_keeps_what_was_there(client, llm):
    sid = new_session(client)
    llm.reset("error_line")  # breaks off after its first piece: kept, marked incomplete
    client.post(f"/api/sessions/{sid}/messages", json={"content": "Explain"})
    answer(llm, "Whole answer")

    reply = regenerate(client, sid)

    assert reply["content"] == "Whole answer"
    assert reply["versions"][0]["metadata"]["incomplete"] is True
    assert upstream(llm) == [("user", "Explain")]


def test_the_channel_tells_of_an_edit_and_a_version_shown_with_their_index(client, llm):
    sid = new_session(client)
    answer(llm, "One reply")
    send(client, sid, "One")
    channel = Channel(client, sid)
    answer(llm, "Uno reply")
    client.put(f"/api/sessions/{sid}/messages/0", json={"content": "Uno"})
    edited = channel.until("done")
    show(client, sid, 0, 0)
    flipped = channel.until("message") + channel.until("message")
    channel.close()

    told = [(data["index"], data["content"]) for _, kind, data in edited if kind == "message"]
    assert told == [(0, "Uno")]  # the history now ends with it: what followed it is gone
    assert edited[-1][2]["index"] == 1 and edited[-1][2]["assistant_message"]["content"] == "Uno reply"
    assert [(data["index"], data["content"]) for _, _, data in flipped] == [(0, "One"), (1, "One reply")]


def test_only_the_last_user_message_can_be_edited(client, llm):
    sid = new_session(client)
    send(client, sid, "First")
    send(client, sid, "Second")
    before = messages(client, sid)

    earlier = client.put(f"/api/sessions/{sid}/messages/0", json={"content": "Changed"})
    reply = client.put(f"/api/sessions/{sid}/messages/3", json={"content": "Changed"})
    past = client.put(f"/api/sessions/{sid}/messages/4", json={"content": "Changed"})

    assert (earlier.status_code, reply.status_code, past.status_code) == (409, 409, 404)
    assert "Only your last message" in earlier.get_json()["error"]["message"]
    assert messages(client, sid) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"version": 5}, 404),
        ({"version": -1}, 422),
        ({"version": "0"}, 422),
        ({"version": 1.5}, 422),
        ({"version": True}, 422),
        ({}, 422),
        ({"version": 0, "extra": 1}, 422),
        ([0], 400),
    ],
)
def test_bad_version_bodies_are_4xx_and_change_nothing(client, llm, body, status):
    sid = new_session(client)
    send(client, sid, "Hi")
    regenerate(client, sid)
    before = messages(client, sid)

    response = client.put(f"/api/sessions/{sid}/messages/1/version", json=body)

    assert response.status_code == status and response.is_json
    assert set(response.get_json()["error"]) >= {"code", "message"}
    assert messages(client, sid) == before


@pytest.mark.parametrize(
    ("body", "status"),
    [({"content": ""}, 422), ({"content": "   "}, 422), ({}, 422), ({"content": 5}, 422), ({"text": "x"}, 422)],
)
def test_bad_edit_bodies_are_4xx_and_change_nothing(client, llm, body, status):
    sid = new_session(client)
    send(client, sid, "Hi")
    before = messages(client, sid)

    response = client.put(f"/api/sessions/{sid}/messages/0", json=body)

    assert response.status_code == status and response.is_json
    assert messages(client, sid) == before


def test_versions_of_a_message_without_any_and_out_of_range_indexes(client, llm):
    sid = new_session(client)
    send(client, sid, "Hi")

    assert show(client, sid, 1, 0).status_code == 200  # the one it has: nothing to do
    assert show(client, sid, 1, 1).status_code == 404
    assert show(client, sid, 2, 0).status_code == 404
    assert client.put(f"/api/sessions/{sid}/messages/x/version", json={"version": 0}).status_code == 404
    assert show(client, "session_nope_1", 0, 0).status_code == 404


def test_nothing_changes_while_a_reply_runs(client, llm):
    sid = new_session(client)
    send(client, sid, "Hi")
    regenerate(client, sid)
    llm.reset("slow")
    started = client.post(
        f"/api/sessions/{sid}/messages", json={"content": "More"}, headers={"Prefer": "respond-async"}
    )
    assert started.status_code == 202
    try:
        assert show(client, sid, 1, 0).status_code == 409
        assert client.put(f"/api/sessions/{sid}/messages/2", json={"content": "x"}).status_code == 409
        assert client.post(f"/api/sessions/{sid}/reply").status_code == 409
    finally:
        llm.release.set()


def test_a_change_built_on_messages_that_changed_meanwhile_is_refused(app, client, llm):
    sid = new_session(client)
    send(client, sid, "Hi")
    store = get_store(app)
    session, docs, first = store.read_stored(sid)
    send(client, sid, "Meanwhile")  # another tab

    with pytest.raises(HistoryChanged):
        store.replace_messages(sid, 1, docs[1:], [make_message("assistant", "lost?")])
    assert [m["content"] for m in messages(client, sid)][2] == "Meanwhile"


def test_another_visitors_session_is_a_404_and_cookie_writes_need_the_csrf_token(app, client, llm):
    sid = new_session(client)
    send(client, sid, "Hi")
    owner, stranger = Visitor(app), Visitor(app)
    mine = owner.create()["session_id"]
    owner.send(mine, "Mine")
    before = messages(client, mine)

    assert stranger.request("PUT", f"/api/sessions/{mine}/messages/1/version", json={"version": 0}).status_code == 404
    assert stranger.request("PUT", f"/api/sessions/{mine}/messages/0", json={"content": "x"}).status_code == 404
    assert stranger.request("POST", f"/api/sessions/{mine}/reply").status_code == 404
    no_token = owner.request("PUT", f"/api/sessions/{mine}/messages/0", json={"content": "x"}, csrf=False)
    assert no_token.status_code == 400 and no_token.is_json
    assert messages(client, mine) == before
    assert owner.request("PUT", f"/api/sessions/{mine}/messages/0", json={"content": "Edited"}).status_code == 201


def test_a_quota_refusing_an_edit_changes_nothing(app, client, llm):
    visitor = Visitor(app)
    sid = visitor.create()["session_id"]
    visitor.send(sid, "Hi")
    store = get_store(app)
    store.set_user_quotas(visitor.user_id, {"bytes": store.user_usage(visitor.user_id)["bytes"] + 10})
    before = messages(client, sid)

    response = visitor.request("PUT", f"/api/sessions/{sid}/messages/0", json={"content": "A much longer message"})

    assert response.status_code == 403 and response.get_json()["error"]["fields"]["quota"] == ["bytes"]
    assert messages(client, sid) == before


def test_the_stored_message_is_plain_json_with_versions_and_version(app, client, llm):
    sid = new_session(client)
    send(client, sid, "Hi")
    regenerate(client, sid)
    _, docs, _ = get_store(app).read_stored(sid)

    stored = json.loads(docs[1])

    assert set(stored) == {"role", "content", "timestamp", "metadata", "versions", "version"}
    assert set(stored["versions"][0]) == {"content", "timestamp", "metadata"}


def test_the_api_document_lists_edit_and_versions(client):
    spec = client.get("/api/openapi.json").get_json()

    edit = spec["paths"]["/api/sessions/{session_id}/messages/{index}"]["put"]
    version = spec["paths"]["/api/sessions/{session_id}/messages/{index}/version"]["put"]
    assert (edit["operationId"], version["operationId"]) == ("edit_message", "show_version")
    index = next(p for p in edit["parameters"] if p["name"] == "index")
    assert index["schema"] == {"type": "integer", "minimum": 0}
    assert {"201", "404", "409", "422", "429"} <= set(edit["responses"])
    assert {"200", "404", "409", "422", "429"} <= set(version["responses"])
    assert "html" in spec["components"]["schemas"]["Message"]["properties"]


def found(client: FlaskClient, word: str) -> list[tuple[int, str]]:
    """The search's hits for a word: (message index, snippet) in the operator's sessions."""
    response = client.get("/api/search", query_string={"q": word})
    assert response.status_code == 200, response.get_json()
    return [(s["message_index"], s["text"]) for r in response.get_json()["results"] for s in r["snippets"]]


def test_search_finds_the_versions_shown_and_not_those_put_aside(client, llm):
    sid = new_session(client)
    answer(llm, "apricot orchards")
    send(client, sid, "Tell me about fruit")
    answer(llm, "blueberry fields")
    regenerate(client, sid)

    assert found(client, "apricot") == [] and found(client, "blueberry") == [(1, "blueberry fields")]

    show(client, sid, 1, 0)  # a reply's version, in place
    assert found(client, "blueberry") == [] and found(client, "apricot") == [(1, "apricot orchards")]

    answer(llm, "cherry trees")
    client.put(f"/api/sessions/{sid}/messages/0", json={"content": "Tell me about orchards"})
    assert found(client, "apricot") == [] and found(client, "fruit") == []
    assert found(client, "cherry") == [(1, "cherry trees")] and found(client, "orchards") == [
        (0, "Tell me about orchards")
    ]

    show(client, sid, 0, 0)  # the old question, and the reply it had, come back to the index
    assert found(client, "cherry") == [] and found(client, "orchards") == [(1, "apricot orchards")]
    assert found(client, "fruit") == [(0, "Tell me about fruit")]
