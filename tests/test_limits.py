"""Rate limits (counted in the real Redis) and the 1 MB body limit."""

from __future__ import annotations

import http.client
import io
import json
import time

import pytest
from flask import Flask

from chatapp.settings import ConfigError
from chatapp.web.limits import STORAGE_KEY_PREFIX, limit_kind, storage_uri
from tests.helpers import OPERATOR_KEY, Api, Visitor
from tests.servers import AppServer, RedisCluster, RedisServer, free_port, gunicorn_cmd

BEARER = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@pytest.fixture
def limited_app(redis_server, redis_db, make_app):
    def build(**config) -> Flask:
        return make_app(
            REDIS_URL=redis_server.url, MESSAGE_RATE_LIMIT="3 per minute", SESSION_RATE_LIMIT="2 per minute", **config
        )

    return build


def post(client, session_id: str, content: str = "hi", **kwargs):
    if "data" not in kwargs and "input_stream" not in kwargs:
        kwargs["json"] = {"content": content}
    return client.post(f"/api/sessions/{session_id}/messages", **kwargs)


def assert_429(response, what: str) -> None:
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == 429 and error["name"] == "Too Many Requests"
    assert what in error["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60


def test_message_posts_over_the_limit_get_429_json_with_retry_after_and_store_nothing(limited_app, redis_db):
    client = limited_app().test_client()
    session_id = Api(client := _operator(client)).create()["session_id"]

    answers = [post(client, session_id, f"message {n}") for n in range(4)]

    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in answers[0].headers  # only the 429 says to wait
    assert_429(answers[3], "Too many messages")
    assert client.get(f"/api/sessions/{session_id}").get_json()["message_count"] == 6  # 3 exchanges, no 4th
    assert any("messages" in key for key in redis_db.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))


def _operator(client, key: str = OPERATOR_KEY):
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def test_the_count_lives_in_redis_so_every_worker_shares_it(limited_app):
    first, second = limited_app().test_client(), limited_app().test_client()
    session_id = Api(_operator(first)).create()["session_id"]
    _operator(second)

    statuses = [post(client, session_id).status_code for client in (first, second, first, second)]

    assert statuses == [201, 201, 201, 429]


def test_session_creation_is_limited_too(limited_app):
    client = _operator(limited_app().test_client())

    statuses = [client.post("/api/session/create", json={}).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]
    assert_429(client.post("/api/session/create", json={}), "Too many new sessions")
    assert client.get("/api/sessions").get_json()["count"] == 2


def test_each_visitor_and_each_key_has_its_own_budget(limited_app):
    app = limited_app(API_KEYS=f"{OPERATOR_KEY},second-key")
    alice, bob = Visitor(app), Visitor(app)
    first_key, second_key = _operator(app.test_client()), _operator(app.test_client(), "second-key")

    for creator in (alice.request, bob.request):
        assert [creator("POST", "/api/session/create", json={}).status_code for _ in range(3)] == [201, 201, 429]
    for client in (first_key, second_key):
        assert [client.post("/api/session/create", json={}).status_code for _ in range(3)] == [201, 201, 429]


def test_refused_requests_do_not_spend_the_budget(limited_app):
    app = limited_app()
    client = app.test_client()
    alice = Visitor(app)

    for _ in range(5):
        assert client.post("/api/session/create", json={}).status_code == 401
        assert alice.request("POST", "/api/session/create", json={}, csrf=False).status_code == 400

    assert alice.request("POST", "/api/session/create", json={}).status_code == 201


def test_the_ui_form_and_the_retry_endpoint_share_the_limits(limited_app):
    """/reply shares the message budget with posting; the UI's form shares the session one."""
    app = limited_app()
    alice = Visitor(app)
    session_id = alice.create()["session_id"]

    form = {"persona": "default", "display_name": "From the form"}
    assert [alice.request("POST", "/sessions", data=form).status_code for _ in range(2)] == [303, 429]
    # Nothing to retry yet (409), but each attempt still spends the shared message budget.
    statuses = [alice.request("POST", f"/api/sessions/{session_id}/reply").status_code for _ in range(2)]
    statuses.append(post(alice.client, session_id, headers={"X-CSRFToken": alice.csrf_token}).status_code)
    statuses.append(alice.request("POST", f"/api/sessions/{session_id}/reply").status_code)
    assert statuses == [409, 409, 201, 429]


def test_edits_and_versions_spend_the_message_budget(limited_app):
    app = limited_app()
    alice = Visitor(app)
    session_id = alice.create()["session_id"]
    alice.send(session_id, "Hi")  # 1 of 3

    edit = alice.request("PUT", f"/api/sessions/{session_id}/messages/0", json={"content": "Hello"})
    flip = alice.request("PUT", f"/api/sessions/{session_id}/messages/0/version", json={"version": 0})
    over = alice.request("PUT", f"/api/sessions/{session_id}/messages/0/version", json={"version": 1})

    assert (edit.status_code, flip.status_code) == (201, 200)
    assert_429(over, "")


@pytest.mark.parametrize(
    ("rule", "method", "kind"),
    [
        ("/api/sessions/<session_id>/messages", "POST", "messages"),
        ("/api/sessions/<session_id>/reply", "POST", "messages"),
        ("/api/sessions/<session_id>/messages/<int:index>", "PUT", "messages"),
        ("/api/sessions/<session_id>/messages/<int:index>/version", "PUT", "messages"),
        ("/api/sessions/<session_id>/messages", "GET", None),
        ("/api/session/create", "POST", "sessions"),
        ("/sessions", "POST", "sessions"),
        ("/sessions/<session_id>/switch", "POST", None),
        ("/api/sessions/<session_id>", "PATCH", None),
        ("/api/sessions", "GET", None),
    ],
)
def test_which_routes_are_limited(memory_app, rule, method, kind):
    [url_rule] = [r for r in memory_app.url_map.iter_rules() if r.rule == rule and method in (r.methods or ())]
    assert limit_kind(memory_app.view_functions[url_rule.endpoint], method) == kind


@pytest.mark.parametrize("value", [False, "false", "off", "0"])
def test_limits_can_be_turned_off(redis_server, redis_db, monkeypatch, value, make_app):
    if isinstance(value, str):
        monkeypatch.setenv("CHATAPP_RATELIMIT_ENABLED", value)
        app = make_app(REDIS_URL=redis_server.url, SESSION_RATE_LIMIT="1 per minute")
    else:
        app = make_app(REDIS_URL=redis_server.url, SESSION_RATE_LIMIT="1 per minute", RATELIMIT_ENABLED=value)
    client = _operator(app.test_client())

    statuses = {client.post("/api/session/create", json={}).status_code for _ in range(5)}

    assert app.config["RATELIMIT_ENABLED"] is False
    assert statuses == {201}
    assert not list(redis_db.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))


def test_limit_settings_come_from_the_environment(redis_server, redis_db, monkeypatch, make_app):
    monkeypatch.setenv("CHATAPP_MESSAGE_RATE_LIMIT", "1/minute")
    app = make_app(REDIS_URL=redis_server.url)
    client = _operator(app.test_client())
    session_id = Api(client).create()["session_id"]

    assert [post(client, session_id).status_code for _ in range(2)] == [201, 429]


def test_a_bad_limit_string_stops_the_app_with_a_clear_message(make_app):
    with pytest.raises(ConfigError, match="MESSAGE_RATE_LIMIT must be in Flask-Limiter's syntax"):
        make_app(REDIS_URL="memory://", MESSAGE_RATE_LIMIT="lots")


def test_embedded_store_limits_in_process(memory_app):
    memory_app.config["SESSION_RATE_LIMIT"] = "1 per minute"
    client = _operator(memory_app.test_client())

    assert [client.post("/api/session/create", json={}).status_code for _ in range(2)] == [201, 429]


def test_limiter_storage_down_is_a_503_not_a_500(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = _operator(app.test_client())
    started = time.monotonic()

    responses = [client.post("/api/session/create", json={}), post(client, "session_x_1_2")]

    assert [r.status_code for r in responses] == [503, 503]
    assert all(r.get_json()["error"]["code"] == 503 for r in responses)
    assert time.monotonic() - started < 10


# --- 413 --------------------------------------------------------------------------------------

MB = 1024 * 1024


@pytest.fixture
def existing(client) -> str:
    return Api(client).create()["session_id"]


def test_a_body_of_exactly_one_megabyte_is_parsed(client, existing):
    padding = MB - len('{"content": ""}')
    response = post(client, existing, data='{"content": "' + "a" * padding + '"}', content_type="application/json")

    assert response.status_code == 422  # read and validated: too long for a message, not too big a body


@pytest.mark.parametrize("how", ["declared length", "chunked, no length"])
def test_a_body_over_one_megabyte_gets_413_json(client, existing, how):
    body = b'{"content": "' + b"a" * MB + b'"}'
    if how == "declared length":
        response = client.post(f"/api/sessions/{existing}/messages", data=body, content_type="application/json")
    else:
        response = client.post(
            f"/api/sessions/{existing}/messages",
            input_stream=io.BytesIO(body),
            content_type="application/json",
            environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
        )

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == 413
    assert client.get(f"/api/sessions/{existing}").get_json()["message_count"] == 0


def test_a_form_post_over_one_megabyte_gets_413_json(app, client, existing):
    alice = Visitor(app)

    response = alice.request(
        "POST", "/api/session/create", csrf=False, data={"csrf_token": alice.csrf_token, "x": "a" * MB}
    )

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == 413
    assert Api(client).list()["count"] == 1


def test_a_chunked_body_under_the_limit_is_read_whole(client):
    body = b'{"user_id": "chunked", "description": "' + b"d" * 900 + b'"}'

    response = client.post(
        "/api/session/create",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )

    assert response.status_code == 201
    assert response.get_json()["description"] == "d" * 900


class _BrokenStream(io.BytesIO):
    """A client that disconnects halfway through its chunked body."""

    def read(self, size: int = -1) -> bytes:
        raise OSError("connection reset by peer")


def test_a_chunked_body_that_breaks_off_gets_400_json(client):
    response = client.post(
        "/api/session/create",
        input_stream=_BrokenStream(),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )

    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "The request body could not be read."


def _chunked_post(port: int, path: str, chunks) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST", path, body=chunks, encode_chunked=True, headers={**BEARER, "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_real_server_refuses_a_large_chunked_body_with_413(client, tmp_path, redis_server):
    port = free_port()
    env = {"CHATAPP_REDIS_URL": redis_server.url, "CHATAPP_API_KEYS": OPERATOR_KEY}
    cmd = gunicorn_cmd(port)
    with AppServer(cmd, port, env=env, cwd=tmp_path) as server:
        # 1.5 MB without a Content-Length, then a small chunked body on a fresh connection.
        large = _chunked_post(server.port, "/api/session/create", (b"a" * 65536 for _ in range(24)))
        small = _chunked_post(server.port, "/api/session/create", iter([b'{"user_id": ', b'"chunked"}']))

    assert large[0] == 413
    assert json.loads(large[1])["error"]["code"] == 413
    assert small[0] == 201
    assert [s["user_id"] for s in Api(client).list()["sessions"]] == ["chunked"]


# --- every kind of store the app supports -----------------------------------------------------


@pytest.mark.parametrize(
    ("config", "uri"),
    [
        ({"REDIS_URL": "redis://db:6379/2"}, "redis://db:6379/2"),
        ({"REDIS_URL": "rediss://:pw@db:6380/0"}, "rediss://:pw@db:6380/0"),
        ({"REDIS_URL": "unix:///run/redis.sock?db=1"}, "redis+unix:///run/redis.sock?db=1"),
        ({"REDIS_URL": "redis://node1:7000/0", "REDIS_CLUSTER": True}, "redis+cluster://node1:7000/0"),
        ({"REDIS_URL": "memory://"}, "memory://"),
    ],
)
def test_limits_count_in_the_apps_own_store(config, uri):
    app = Flask(__name__)
    app.config.update(config)

    assert storage_uri(app) == uri


def _three_creates(app: Flask) -> list[int]:
    client = _operator(app.test_client())
    return [client.post("/api/session/create", json={}).status_code for _ in range(3)]


@pytest.mark.redis
def test_limits_over_a_unix_socket(tmp_path, make_app):
    socket_path = tmp_path / "redis.sock"
    with RedisServer(tmp_path / "unix", extra_args=["--unixsocket", str(socket_path)]) as server:
        app = make_app(REDIS_URL=f"unix://{socket_path}", SESSION_RATE_LIMIT="2 per minute")
        statuses = _three_creates(app)
        with server.client(decode_responses=True) as direct:
            counters = list(direct.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))

    assert statuses == [201, 201, 429]
    assert counters


@pytest.mark.cluster
def test_limits_on_a_redis_cluster(tmp_path, make_app):
    with RedisCluster(tmp_path) as cluster:
        app = make_app(REDIS_URL=cluster.url, REDIS_CLUSTER=True, MESSAGE_RATE_LIMIT="2 per minute")
        client = _operator(app.test_client())
        session_id = client.post("/api/session/create", json={"user_id": "u"}).get_json()["session_id"]
        statuses = [post(client, session_id).status_code for _ in range(3)]
        with cluster.client(decode_responses=True) as direct:
            counters = list(direct.scan_iter(f"{STORAGE_KEY_PREFIX}:*"))

    assert statuses == [201, 201, 429]
    assert counters
