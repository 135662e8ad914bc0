"""What one visitor may keep: live and archived sessions, messages per session, bytes (real redis-server).

Each quota answers 403 naming it, stores nothing, and an operator can lift it per user."""

from __future__ import annotations

import pytest

from tests.helpers import OPERATOR_KEY, Visitor


@pytest.fixture
def quota_app(redis_server, redis_db, make_app):
    def build(**quotas):
        return make_app(REDIS_URL=redis_server.url, RATELIMIT_ENABLED=False, **quotas)

    return build


def assert_quota(response, name: str) -> None:
    assert response.status_code == 403, response.get_json()
    error = response.get_json()["error"]
    assert error["fields"] == {"quota": [name]} and error["message"].startswith("Quota reached:")


def test_live_sessions_quota_refuses_one_more_and_stores_nothing(quota_app):
    app = quota_app(QUOTA_LIVE_SESSIONS=3)
    alice = Visitor(app)
    for _ in range(3):
        alice.create()

    assert_quota(alice.request("POST", "/api/session/create", json={}), "live_sessions")
    assert alice.request("GET", "/api/sessions").get_json()["count"] == 3
    # the page's form is held to the same quota, and says so
    form = alice.request("POST", "/sessions", data={"persona": "default", "csrf_token": alice.csrf_token})
    assert form.status_code == 403 and "Quota reached" in form.get_data(as_text=True)
    # another visitor has quotas of its own
    Visitor(app).create()


def test_deleting_frees_room_under_the_live_sessions_quota(quota_app):
    app = quota_app(QUOTA_LIVE_SESSIONS=1)
    alice = Visitor(app)
    first = alice.create()["session_id"]
    assert alice.request("POST", "/api/session/create", json={}).status_code == 403

    assert alice.request("DELETE", f"/api/sessions/{first}").status_code == 200

    assert alice.request("POST", "/api/session/create", json={}).status_code == 201


def test_kept_sessions_quota_limits_archiving(quota_app):
    app = quota_app(QUOTA_KEPT_SESSIONS=1)
    alice = Visitor(app)
    one, two = alice.create()["session_id"], alice.create()["session_id"]
    assert alice.request("PATCH", f"/api/sessions/{one}", json={"archived": True}).status_code == 200

    refused = alice.request("PATCH", f"/api/sessions/{two}", json={"archived": True, "display_name": "x"})

    assert_quota(refused, "kept_sessions")
    session = alice.request("GET", f"/api/sessions/{two}").get_json()
    assert session["archived"] is False and session["display_name"] is None  # nothing of the write stayed


def test_messages_per_session_quota(quota_app):
    app = quota_app(QUOTA_MESSAGES_PER_SESSION=4)
    alice = Visitor(app)
    sid = alice.create()["session_id"]
    alice.send(sid, "one")  # with the offline reply: 2 messages
    alice.send(sid, "two")

    assert_quota(
        alice.request("POST", f"/api/sessions/{sid}/messages", json={"content": "three"}), "messages_per_session"
    )
    assert alice.request("GET", f"/api/sessions/{sid}").get_json()["message_count"] == 4


def test_bytes_quota_counts_every_session_and_frees_on_clear(quota_app):
    app = quota_app(QUOTA_BYTES=6000)
    alice = Visitor(app)
    one, two = alice.create()["session_id"], alice.create()["session_id"]
    alice.send(one, "x" * 2000)
    statuses = [alice.request("POST", f"/api/sessions/{two}/messages", json={"content": "y" * 2000}).status_code]
    statuses.append(alice.request("POST", f"/api/sessions/{two}/messages", json={"content": "y" * 2000}).status_code)

    assert statuses == [201, 403]
    assert alice.request("GET", f"/api/sessions/{two}").get_json()["message_count"] == 2
    assert alice.request("DELETE", f"/api/session/{one}/clear").status_code == 200
    assert alice.request("POST", f"/api/sessions/{two}/messages", json={"content": "y" * 2000}).status_code == 201


def test_operators_are_not_held_to_visitor_quotas(quota_app):
    app = quota_app(QUOTA_LIVE_SESSIONS=1)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"

    statuses = {client.post("/api/session/create", json={"user_id": "scripted"}).status_code for _ in range(3)}

    assert statuses == {201}


def test_an_operator_lifts_or_sets_one_users_quota_from_the_command_line(quota_app):
    app = quota_app(QUOTA_LIVE_SESSIONS=1)
    alice, bob = Visitor(app), Visitor(app)
    alice.create()
    bob.create()
    runner = app.test_cli_runner()

    lifted = runner.invoke(args=["quotas", "set", alice.user_id, "--live-sessions", "0"], catch_exceptions=False)

    assert lifted.exit_code == 0, lifted.output
    assert "live_sessions" in lifted.output and "none" in lifted.output and "this user" in lifted.output
    assert {alice.request("POST", "/api/session/create", json={}).status_code for _ in range(3)} == {201}
    assert bob.request("POST", "/api/session/create", json={}).status_code == 403
    shown = runner.invoke(args=["quotas", "show", alice.user_id], catch_exceptions=False)
    assert "4" in shown.output.split("live_sessions", 1)[1].splitlines()[0]  # in use: 4 live sessions
    back = runner.invoke(args=["quotas", "set", alice.user_id, "--default", "live_sessions"], catch_exceptions=False)
    assert back.exit_code == 0 and "default" in back.output
    assert_quota(alice.request("POST", "/api/session/create", json={}), "live_sessions")


@pytest.mark.parametrize("value", ["-1", "many", "1.5"])
def test_a_bad_quota_setting_stops_the_app(make_app, monkeypatch, value):
    from chatapp.settings import ConfigError

    monkeypatch.setenv("CHATAPP_QUOTA_BYTES", value)
    with pytest.raises(ConfigError, match="QUOTA_BYTES"):
        make_app(REDIS_URL="memory://")
