"""Share links through the API and the shared page, on a real redis-server and a real Redis Cluster.

What the issue asks to be shown: a snapshot link with ``expires_in: 60`` read without a cookie,
then (its Redis TTL run out) 404 with its keys gone; revoking is a 404 at once; neither the JSON
nor the page holds the owner's id, the session id or metadata; a live link shows what was posted
after sharing and a snapshot does not; copying makes a session of the viewer's with the same
messages; and nobody else can list, make or revoke a session's links.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import redis.cluster
from flask import Flask
from flask.testing import FlaskClient

from chatapp.storage.keys import shard_of_share, shard_prefix
from tests.helpers import AppFactory, Visitor
from tests.servers import RedisCluster, RedisServer

GONE = "This link does not work: it expired, was revoked, or never existed."
OWNER_NAME = "owner-marker-7f3a"
METADATA_MARK = "metadata-marker-91c2"


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def store(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[tuple[str, redis.Redis]]:
    """('redis' or 'cluster', a direct client emptied for the test): every test below runs on both."""
    if request.param == "redis":
        with redis_server.client(decode_responses=True) as client:
            client.flushall()
            yield redis_server.url, client
        return
    cluster: RedisCluster = request.getfixturevalue("cluster")
    with cluster.client(decode_responses=True) as client:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
        yield cluster.url, client


@pytest.fixture
def app(store: tuple[str, redis.Redis], make_app: AppFactory) -> Flask:
    url, client = store
    return make_app(REDIS_URL=url, REDIS_CLUSTER=isinstance(client, redis.cluster.RedisCluster))


@pytest.fixture
def db(store: tuple[str, redis.Redis]) -> redis.Redis:
    return store[1]


@pytest.fixture
def owner(app: Flask) -> Visitor:
    return Visitor(app)


@pytest.fixture
def anonymous(app: Flask) -> FlaskClient:
    """A browser with no cookie at all."""
    return app.test_client()


@pytest.fixture
def session_id(owner: Visitor) -> str:
    """The owner's session: a name, metadata, and two exchanges (the offline replies carry metadata)."""
    created = owner.create(display_name="Trip plans", metadata={"note": METADATA_MARK})
    owner.send(created["session_id"], "Where should we go?")
    owner.send(created["session_id"], "And **when**?")
    return created["session_id"]


def share(who: Visitor, session_id: str, expires_in: int | None = 60, mode: str = "snapshot") -> dict:
    response = who.request("POST", f"/api/sessions/{session_id}/shares", json={"expires_in": expires_in, "mode": mode})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def token_of(link: dict) -> str:
    return link["url"].rsplit("/share/", 1)[1]


def share_keys(link: dict) -> list[str]:
    token = token_of(link)
    prefix = shard_prefix(shard_of_share(token) or 0)
    return [f"{prefix}sh:{token}", f"{prefix}shm:{token}", f"{prefix}shid:{link['share_id']}"]


def all_keys(db: redis.Redis) -> list[str]:
    if isinstance(db, redis.cluster.RedisCluster):
        return list(db.keys("*", target_nodes=redis.cluster.RedisCluster.PRIMARIES))
    return list(db.keys("*"))


def assert_gone(client: FlaskClient, token: str) -> None:
    """The JSON and the page answer the one 404 any link that does not work gets."""
    response = client.get(f"/api/share/{token}")
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": 404, "name": "Not Found", "message": GONE}}
    page = client.get(f"/share/{token}")
    assert page.status_code == 404 and GONE in page.get_data(as_text=True)
    assert page.headers["X-Robots-Tag"] == "noindex" and page.headers["Referrer-Policy"] == "no-referrer"


def contents(shared: dict) -> list[str]:
    return [m["content"] for m in shared["messages"]]


# --- the life of a link -------------------------------------------------------------------------


def test_a_snapshot_link_is_read_without_a_cookie_then_expires_with_its_keys(owner, anonymous, session_id, db):
    link = share(owner, session_id, expires_in=60)
    token = token_of(link)

    response = anonymous.get(f"/api/share/{token}")
    assert response.status_code == 200
    shared = response.get_json()
    assert shared["title"] == "Trip plans" and shared["persona"] == "Default Assistant"
    assert contents(shared)[0::2] == ["Where should we go?", "And **when**?"]
    assert shared["mode"] == "snapshot" and shared["expires_at"] == link["expires_at"]
    page = anonymous.get(f"/share/{token}")
    assert page.status_code == 200 and "Where should we go?" in page.get_data(as_text=True)
    # Each of the link's keys expires with it, in Redis itself: no sweeper.
    for key in share_keys(link):
        assert 58_000 < db.pttl(key) <= 60_000, key

    for key in share_keys(link):  # a minute passes, as far as Redis can tell
        db.pexpire(key, 1)
    time.sleep(0.05)

    assert_gone(anonymous, token)
    assert not [key for key in all_keys(db) if token in key or link["share_id"] in key]
    assert owner.request("GET", f"/api/sessions/{session_id}/shares").get_json() == {"shares": [], "count": 0}


def test_revoking_a_link_answers_404_at_once(owner, anonymous, session_id, db):
    link = share(owner, session_id, expires_in=None)
    assert anonymous.get(f"/api/share/{token_of(link)}").status_code == 200
    assert all(db.pttl(key) == -1 for key in share_keys(link) if db.exists(key))  # never expires

    response = owner.request("DELETE", f"/api/shares/{link['share_id']}")

    assert response.status_code == 200 and response.get_json()["status"] == "success"
    assert_gone(anonymous, token_of(link))
    assert not any(db.exists(key) for key in share_keys(link))
    assert owner.request("DELETE", f"/api/shares/{link['share_id']}").status_code == 404


@pytest.mark.parametrize("token", ["nope", "0" + "A" * 32, "c" + "A" * 32, "0" + "A" * 31, "x" * 200])
def test_unknown_and_malformed_links_get_the_same_404(anonymous, token):
    assert_gone(anonymous, token)


def test_neither_the_json_nor_the_page_holds_the_owner_the_session_or_metadata(owner, anonymous, session_id):
    named = owner.create(user_id=OWNER_NAME, display_name="x", metadata={"note": METADATA_MARK})
    owner.send(named["session_id"], "hello")
    for sid in (session_id, named["session_id"]):
        for mode in ("snapshot", "live"):
            token = token_of(share(owner, sid, mode=mode))
            for body in (anonymous.get(f"/api/share/{token}").get_data(as_text=True),
                         anonymous.get(f"/share/{token}").get_data(as_text=True)):  # fmt: skip
                assert owner.user_id not in body and sid not in body
                assert METADATA_MARK not in body and "metadata" not in body
                assert "offline" not in body.replace("I'm offline", "").replace("I&#39;m offline", "")
            keys = set(anonymous.get(f"/api/share/{token}").get_json())
            assert keys == {"title", "persona", "mode", "created_at", "last_activity", "shared_at", "expires_at",
                            "message_count", "messages", "next_before"}  # fmt: skip


def test_a_live_link_shows_later_messages_and_a_snapshot_does_not(owner, anonymous, session_id):
    snapshot = token_of(share(owner, session_id, mode="snapshot"))
    live = token_of(share(owner, session_id, mode="live"))

    owner.send(session_id, "Posted after sharing")

    assert "Posted after sharing" in contents(anonymous.get(f"/api/share/{live}").get_json())
    assert "Posted after sharing" not in contents(anonymous.get(f"/api/share/{snapshot}").get_json())
    assert "Posted after sharing" in anonymous.get(f"/share/{live}").get_data(as_text=True)
    assert "Posted after sharing" not in anonymous.get(f"/share/{snapshot}").get_data(as_text=True)


def test_deleting_the_session_ends_live_links_and_keeps_snapshots(owner, anonymous, session_id, db):
    snapshot, live = share(owner, session_id, mode="snapshot"), share(owner, session_id, mode="live")

    assert owner.request("DELETE", f"/api/sessions/{session_id}").status_code == 200

    assert_gone(anonymous, token_of(live))
    assert not any(db.exists(key) for key in share_keys(live))
    kept = anonymous.get(f"/api/share/{token_of(snapshot)}").get_json()
    assert contents(kept)[0] == "Where should we go?"
    assert owner.request("DELETE", f"/api/shares/{snapshot['share_id']}").status_code == 200  # still revocable


def test_views_are_counted_and_links_listed_newest_first(owner, anonymous, session_id):
    first, second = share(owner, session_id), share(owner, session_id, expires_in=None, mode="live")
    for _ in range(3):
        anonymous.get(f"/share/{token_of(first)}")
    anonymous.get(f"/api/share/{token_of(second)}")

    listed = owner.request("GET", f"/api/sessions/{session_id}/shares").get_json()

    assert listed["count"] == 2
    assert [(s["share_id"], s["views"], s["mode"]) for s in listed["shares"]] == [
        (second["share_id"], 1, "live"),
        (first["share_id"], 3, "snapshot"),
    ]
    assert listed["shares"][0]["expires_at"] is None and listed["shares"][0]["url"] == second["url"]


def test_the_page_is_server_rendered_private_and_under_the_apps_policy(app, owner, anonymous, session_id):
    page = anonymous.get(f"/share/{token_of(share(owner, session_id))}")
    html = page.get_data(as_text=True)

    assert '<meta name="robots" content="noindex">' in html and "<script" not in html
    assert page.headers["X-Robots-Tag"] == "noindex" and page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Content-Security-Policy"] == app.test_client().get("/").headers["Content-Security-Policy"]
    assert "Trip plans" in html and "Default Assistant" in html and 'name="csrf_token"' in html


# --- continue this conversation -------------------------------------------------------------------


def test_copy_makes_a_session_of_the_viewers_with_the_same_messages(app, owner, session_id):
    viewer = Visitor(app)
    token = token_of(share(owner, session_id))
    original = owner.request("GET", f"/api/sessions/{session_id}/messages").get_json()["messages"]

    response = viewer.request("POST", f"/api/share/{token}/copy")

    assert response.status_code == 201, response.get_json()
    copied = response.get_json()
    assert copied["session_id"] != session_id and copied["url"].endswith(f"/sessions/{copied['session_id']}")
    mine = viewer.request("GET", f"/api/sessions/{copied['session_id']}").get_json()
    assert mine["user_id"] == viewer.user_id and mine["display_name"] == "Trip plans" and mine["metadata"] == {}
    messages = viewer.request("GET", f"/api/sessions/{copied['session_id']}/messages").get_json()["messages"]
    assert [(m["role"], m["content"], m["timestamp"]) for m in messages] == [
        (m["role"], m["content"], m["timestamp"]) for m in original
    ]
    assert all(m["metadata"] == {} for m in messages)
    assert owner.request("GET", f"/api/sessions/{copied['session_id']}").status_code == 404


def test_continue_on_the_page_makes_a_cookieless_viewer_a_visitor_with_the_copy_open(app, owner, session_id):
    browser = app.test_client()
    token = token_of(share(owner, session_id))
    page = browser.get(f"/share/{token}").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    response = browser.post(f"/share/{token}/continue", data={"csrf_token": csrf})

    assert response.status_code == 303 and "/sessions/session_" in response.headers["Location"]
    opened = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "Where should we go?" in opened and "Trip plans" in opened
    assert browser.post(f"/share/{token}/continue", data={}).status_code == 400  # no CSRF token


def test_copy_of_a_link_that_does_not_work_is_404(app, owner, session_id):
    link = share(owner, session_id)
    owner.request("DELETE", f"/api/shares/{link['share_id']}")

    response = Visitor(app).request("POST", f"/api/share/{token_of(link)}/copy")

    assert response.status_code == 404 and response.get_json()["error"]["message"] == GONE


# --- who may do what --------------------------------------------------------------------------------


def test_another_visitor_cannot_list_make_or_revoke_a_sessions_links(app, owner, session_id):
    link = share(owner, session_id)
    intruder = Visitor(app)

    answers = [
        intruder.request("GET", f"/api/sessions/{session_id}/shares"),
        intruder.request("POST", f"/api/sessions/{session_id}/shares", json={"expires_in": 60, "mode": "live"}),
        intruder.request("DELETE", f"/api/shares/{link['share_id']}"),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert all(a.get_json()["error"]["code"] == 404 for a in answers)
    listed = owner.request("GET", f"/api/sessions/{session_id}/shares").get_json()
    assert [s["share_id"] for s in listed["shares"]] == [link["share_id"]]
    assert app.test_client().get(f"/api/share/{token_of(link)}").status_code == 200


def test_an_operator_manages_anyones_links(app, owner, session_id):
    operator = app.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-operator-key"
    link = share(owner, session_id)

    assert operator.get(f"/api/sessions/{session_id}/shares").get_json()["count"] == 1
    assert operator.post(f"/api/sessions/{session_id}/shares", json={"expires_in": None}).status_code == 201
    assert operator.delete(f"/api/shares/{link['share_id']}").status_code == 200
    assert_gone(operator, token_of(link))


def test_writes_with_a_cookie_need_the_csrf_token(owner, session_id):
    link = share(owner, session_id)
    body = {"expires_in": 60, "mode": "snapshot"}

    assert owner.request("POST", f"/api/sessions/{session_id}/shares", json=body, csrf=False).status_code == 400
    assert owner.request("DELETE", f"/api/shares/{link['share_id']}", csrf=False).status_code == 400
    assert owner.request("POST", f"/api/share/{token_of(link)}/copy", csrf=False).status_code == 400


def test_the_request_log_never_holds_a_links_token(owner, anonymous, session_id, caplog):
    caplog.set_level("INFO")
    token = token_of(share(owner, session_id))

    anonymous.get(f"/share/{token}")
    anonymous.get(f"/api/share/{token}")
    Visitor(owner.app).request("POST", f"/api/share/{token}/copy")

    paths = [r.getMessage() for r in caplog.records if '"event":"request"' in r.getMessage()]
    assert len([p for p in paths if "/share/<token>" in p]) == 3
    assert token not in caplog.text
