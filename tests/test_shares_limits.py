"""Share links: bad input is a 4xx in the error envelope, a visitor's cap on working links, and
the rate limits on making links and on viewing them (counted in the real Redis)."""

from __future__ import annotations

import pytest

from chatapp.web.limits import limit_kind
from tests.helpers import Visitor


@pytest.fixture
def owner(app) -> Visitor:
    return Visitor(app)


@pytest.fixture
def session_id(owner: Visitor) -> str:
    return owner.create()["session_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": 31_536_001}, "expires_in"),
        ({"expires_in": "60"}, "expires_in"),
        ({"expires_in": 60.5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({}, "expires_in"),
        ({"expires_in": 60, "mode": "frozen"}, "mode"),
        ({"expires_in": 60, "mode": None}, "mode"),
        ({"expires_in": 60, "visibility": "public"}, "visibility"),
    ],
)
def test_bad_bodies_get_422_naming_the_field(owner, session_id, body, field):
    response = owner.request("POST", f"/api/sessions/{session_id}/shares", json=body)

    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("expires_in", [60, 31_536_000, None])
def test_the_edges_of_expires_in_are_accepted(owner, session_id, expires_in):
    response = owner.request("POST", f"/api/sessions/{session_id}/shares", json={"expires_in": expires_in})

    assert response.status_code == 201
    assert (response.get_json()["expires_at"] is None) == (expires_in is None)
    assert response.get_json()["mode"] == "snapshot"  # the default


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/nonsense/shares"),
        ("POST", "/api/sessions/session_x_1_000000000000/shares"),
        ("DELETE", "/api/shares/nonsense"),
        ("DELETE", "/api/shares/shc0000000000000000"),  # shard 12 of 12: not a shard
        ("GET", "/api/share/" + "b" * 33),
        ("POST", "/api/share/" + "b" * 33 + "/copy"),
    ],
)
def test_unknown_ids_and_tokens_get_404_json(owner, method, path):
    response = owner.request(method, path, json={"expires_in": 60} if "/shares" in path and method == "POST" else None)

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == 404


def test_a_bad_cursor_on_the_page_and_the_json_is_422_not_500(app):
    for path in ("/share/whatever?before=-1", "/api/share/whatever?before=x"):
        assert app.test_client().get(path).status_code == 422


def test_a_visitor_has_at_most_the_configured_number_of_working_links(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, MAX_SHARES_PER_USER=2)
    owner = Visitor(app)
    sid = owner.create()["session_id"]
    other = owner.create()["session_id"]
    made = [owner.request("POST", f"/api/sessions/{s}/shares", json={"expires_in": 60}) for s in (sid, other)]

    over = owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": None})

    assert over.status_code == 403
    assert over.get_json()["error"]["fields"] == {"quota": ["shares"]}
    assert "revoke one first" in over.get_json()["error"]["message"]
    owner.request("DELETE", f"/api/shares/{made[0].get_json()['share_id']}")
    assert owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": None}).status_code == 201


def test_making_links_is_rate_limited_per_visitor(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, SHARE_RATE_LIMIT="2 per minute")
    owner = Visitor(app)
    sid = owner.create()["session_id"]

    statuses = [
        owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": 60}).status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert int(owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": 60}).headers["Retry-After"])
    assert Visitor(app).request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": 60}).status_code == 404


def test_views_are_rate_limited_per_address_with_or_without_a_cookie(make_app, redis_server, redis_db):
    app = make_app(REDIS_URL=redis_server.url, ADDRESS_SHARE_VIEW_RATE_LIMIT="3 per minute")
    owner = Visitor(app)
    sid = owner.create()["session_id"]
    url = owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": 60}).get_json()["url"]
    token = url.rsplit("/", 1)[1]
    views = [
        app.test_client().get(f"/share/{token}"),
        Visitor(app).request("GET", f"/api/share/{token}"),
        app.test_client().get("/api/share/guess"),  # guesses count too
    ]

    refused = app.test_client().get(f"/share/{token}")

    assert [v.status_code for v in views] == [200, 200, 404]
    assert refused.status_code == 429 and "share link views" in refused.get_data(as_text=True)
    other = app.test_client().get(f"/share/{token}", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("rule", "method", "kind"),
    [
        ("/api/sessions/<session_id>/shares", "POST", "shares"),
        ("/api/sessions/<session_id>/shares", "GET", None),
        ("/api/shares/<share_id>", "DELETE", None),
        ("/api/share/<token>", "GET", "share_views"),
        ("/share/<token>", "GET", "share_views"),
        ("/api/share/<token>/copy", "POST", "sessions"),
        ("/share/<token>/continue", "POST", "sessions"),
    ],
)
def test_which_share_routes_are_limited(memory_app, rule, method, kind):
    [url_rule] = [r for r in memory_app.url_map.iter_rules() if r.rule == rule and method in (r.methods or ())]
    assert limit_kind(memory_app.view_functions[url_rule.endpoint], method) == kind
