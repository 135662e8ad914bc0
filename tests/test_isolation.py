"""Issue 5: visitors see only their own sessions, operators see everyone, nobody sees anything."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import OPERATOR_KEY, Api, Visitor


@pytest.fixture
def alice(app: Flask) -> Visitor:
    return Visitor(app)


@pytest.fixture
def bob(app: Flask) -> Visitor:
    return Visitor(app)


@pytest.fixture
def alices_session(alice: Visitor) -> str:
    session_id = alice.create(persona="mental_health_nurse", display_name="private")["session_id"]
    alice.send(session_id, "something only Alice may read")
    return session_id


def snapshot(client: FlaskClient, session_id: str) -> tuple:
    """Everything about a session, as the operator sees it."""
    detail = client.get(f"/api/sessions/{session_id}")
    history = client.get(f"/api/session/{session_id}/history")
    assert detail.status_code == 200 and history.status_code == 200
    return detail.get_json(), history.get_json()


# Every way to read or change a session by id, and by its owner's user id.
CROSS_ACCESS = [
    ("GET", "/api/sessions/{sid}", None),
    ("GET", "/api/session/{sid}/history", None),
    ("GET", "/api/session/{uid}/history", None),
    ("GET", "/api/sessions/{sid}/messages", None),
    ("POST", "/api/sessions/{sid}/messages", {"content": "Bob was here"}),
    ("PATCH", "/api/sessions/{sid}", {"display_name": "Bob's now"}),
    ("PATCH", "/api/sessions/{sid}", {"archived": True}),
    ("DELETE", "/api/session/{sid}/clear", None),
    ("DELETE", "/api/session/{uid}/clear", None),
    ("DELETE", "/api/sessions/{sid}", None),
]


@pytest.mark.parametrize(("method", "template", "body"), CROSS_ACCESS)
def test_another_visitors_session_answers_404_and_stays_untouched(
    client, alice, bob, alices_session, method, template, body
):
    before = snapshot(client, alices_session)
    path = template.format(sid=alices_session, uid=alice.user_id)
    probe = template.format(sid="session_nobody_1700000000_0000000000", uid="user_nobody")

    response = bob.request(method, path, json=body)
    missing = bob.request(method, probe, json=body)

    assert response.status_code == 404
    # Indistinguishable from an id that does not exist, so ids cannot be probed.
    assert response.get_json()["error"]["message"].replace(path.split("/")[3], "X") == (
        missing.get_json()["error"]["message"].replace(probe.split("/")[3], "X")
    )
    assert snapshot(client, alices_session) == before
    assert alice.request("GET", f"/api/sessions/{alices_session}").status_code == 200


def test_own_user_id_path_resolves_only_within_own_sessions(alice, bob, alices_session):
    bobs = bob.create()["session_id"]

    assert bob.request("GET", f"/api/session/{bob.user_id}/history").get_json()["session_id"] == bobs
    assert alice.request("GET", f"/api/session/{alice.user_id}/history").get_json()["session_id"] == alices_session


@pytest.mark.parametrize("query", [{}, {"user_id": "{uid}"}, {"archived": "true"}, {"persona": "mental_health_nurse"}])
def test_visitor_list_holds_only_own_sessions_whatever_the_filter(client, alice, bob, alices_session, query):
    client.patch(f"/api/sessions/{alice.create()['session_id']}", json={"archived": True})
    bob.create(persona="mental_health_nurse")
    query = {k: v.format(uid=alice.user_id) for k, v in query.items()}

    listing = bob.request("GET", "/api/sessions", query_string=query).get_json()

    assert {s["user_id"] for s in listing["sessions"]} <= {bob.user_id}
    assert listing["count"] == len(listing["sessions"])


def test_visitor_user_id_in_create_body_is_ignored(client, alice, bob):
    created = bob.create(user_id=alice.user_id, persona="default")

    assert created["user_id"] == bob.user_id
    assert Api(client).list(user_id=alice.user_id)["count"] == 0


def test_operator_sees_everyone_and_filters_by_user_id(client, alice, bob, alices_session):
    bobs = bob.create()["session_id"]
    johns = Api(client).create(user_id="John Doe")["session_id"]

    everyone = {s["session_id"] for s in Api(client).list()["sessions"]}
    only_alice = Api(client).list(user_id=alice.user_id)["sessions"]

    assert everyone == {alices_session, bobs, johns}
    assert [s["session_id"] for s in only_alice] == [alices_session]
    history = client.get(f"/api/session/{alice.user_id}/history").get_json()
    assert [m["content"] for m in history["messages"]][0] == "something only Alice may read"


# --- cookies and CSRF -------------------------------------------------------------------------


def tampered(cookie: str) -> str:
    # The first signature character: the last one carries padding bits that may not count.
    payload, _, signature = cookie.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{payload}.{flipped}{signature[1:]}"


FORGERIES = ["tampered signature", "alice's payload, bob's signature", "other secret key", "unsigned"]


@pytest.mark.parametrize("forge", FORGERIES)
def test_forged_cookie_grants_nothing(app, alice, bob, alices_session, forge):
    if forge == "tampered signature":
        cookie = tampered(alice.cookie)
    elif forge == "alice's payload, bob's signature":
        cookie = ".".join(alice.cookie.split(".")[:-1] + bob.cookie.split(".")[-1:])
    elif forge == "other secret key":
        other = Flask(__name__)
        other.secret_key = "not-the-apps-key"
        cookie = other.session_interface.get_signing_serializer(other).dumps({"user_id": alice.user_id})
    else:
        cookie = alice.cookie.split(".")[0]
    intruder = app.test_client()
    intruder.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)

    for response in (
        intruder.get("/api/sessions"),
        intruder.get(f"/api/sessions/{alices_session}"),
        intruder.delete(f"/api/sessions/{alices_session}", headers={"X-CSRFToken": alice.csrf_token}),
    ):
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == 401
    assert alice.request("GET", f"/api/sessions/{alices_session}").status_code == 200


COOKIE_WRITES = [
    ("POST", "/api/session/create", {"persona": "default"}),
    ("POST", "/api/sessions/{sid}/messages", {"content": "hi"}),
    ("PATCH", "/api/sessions/{sid}", {"display_name": "renamed"}),
    ("DELETE", "/api/session/{sid}/clear", None),
    ("DELETE", "/api/sessions/{sid}", None),
]


@pytest.mark.parametrize(("method", "template", "body"), COOKIE_WRITES)
@pytest.mark.parametrize("token", ["missing", "wrong", "another visitor's"])
def test_cookie_write_without_its_csrf_token_is_refused_with_json(
    client, alice, bob, alices_session, method, template, body, token
):
    before = snapshot(client, alices_session)
    headers = {"X-CSRFToken": {"missing": None, "wrong": "nonsense", "another visitor's": bob.csrf_token}[token]}
    headers = {k: v for k, v in headers.items() if v is not None}

    response = alice.request(method, template.format(sid=alices_session), json=body, csrf=False, headers=headers)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == 400 and "CSRF" in error["message"]
    assert snapshot(client, alices_session) == before
    assert Api(client).list()["count"] == 1


@pytest.mark.parametrize(("method", "template", "body"), COOKIE_WRITES)
def test_cookie_write_with_its_csrf_token_works(alice, alices_session, method, template, body):
    response = alice.request(method, template.format(sid=alices_session), json=body)

    assert response.status_code in (200, 201), response.get_json()


def test_csrf_token_also_works_as_a_form_field(alice, alices_session):
    response = alice.request(
        "DELETE", f"/api/sessions/{alices_session}", csrf=False, data={"csrf_token": alice.csrf_token}
    )

    assert response.status_code == 200


def test_bearer_requests_are_exempt_from_csrf_even_with_a_cookie(app, client, alices_session, alice):
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], alice.cookie)

    response = client.patch(f"/api/sessions/{alices_session}", json={"display_name": "by the operator"})

    assert response.status_code == 200
    assert response.get_json()["display_name"] == "by the operator"


# --- nobody -----------------------------------------------------------------------------------

PUBLIC = {"/api/openapi.json", "/api/personas"}
PUBLIC_LINKS = {"/api/share/x"}  # anyone holding a share link's token may read it: "x" is no token, so 404


def api_routes(app: Flask) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<{argument}>", "x").replace(f"<path:{argument}>", "x")
                path = path.replace(f"<int:{argument}>", "0")
            routes.append((method, path))
    return routes


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-key",
        f"Bearer {OPERATOR_KEY}x",
        f"Bearer {OPERATOR_KEY[:-1]}",
        "Bearer ",
        f"Basic {OPERATOR_KEY}",
        OPERATOR_KEY,
    ],
)
def test_no_credentials_or_a_wrong_key_gets_401_on_every_api_route(memory_app, authorization):
    client = memory_app.test_client()
    headers = {"Authorization": authorization} if authorization is not None else {}
    routes = api_routes(memory_app)
    assert len(routes) >= 10
    # A wrong key is refused even on public paths; sending no key at all is fine there.
    presents_a_key = (authorization or "").startswith("Bearer ") and bool(authorization.split(" ", 1)[1].strip())

    for method, path in routes:
        response = client.open(path, method=method, headers=headers, json={} if method != "GET" else None)
        if path in PUBLIC and not presents_a_key:
            assert response.status_code == 200, path
            continue
        if path in PUBLIC_LINKS and method == "GET" and not presents_a_key:
            assert response.status_code == 404, path
            continue
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.get_json()["error"]["code"] == 401


def test_public_paths_answer_without_credentials_and_health_too(memory_app):
    client = memory_app.test_client()

    for path in [*PUBLIC, "/health"]:
        assert client.get(path).status_code == 200, path


def test_every_configured_key_works_and_each_is_compared_whole(redis_server, redis_db, make_app):
    app = make_app(REDIS_URL=redis_server.url, API_KEYS=" first-key , second-key ,")
    client = app.test_client()

    for key, status in [("first-key", 200), ("second-key", 200), ("first", 401), ("first-key,second-key", 401)]:
        assert client.get("/api/sessions", headers={"Authorization": f"Bearer {key}"}).status_code == status, key


def test_open_api_makes_every_caller_an_operator(redis_server, redis_db, caplog, make_app):
    app = make_app(REDIS_URL=redis_server.url, OPEN_API=True)
    client = app.test_client()

    created = client.post("/api/session/create", json={"user_id": "John Doe"})
    assert created.status_code == 201 and created.get_json()["user_id"] == "John Doe"
    assert client.get("/api/sessions").get_json()["count"] == 1
    assert "CHATAPP_OPEN_API is on" in caplog.text


def test_the_document_says_who_may_call_what(client):
    document = client.get("/api/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]

    assert schemes["operatorKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator key from CHATAPP_API_KEYS.",
    }
    assert schemes["visitorCookie"]["in"] == "cookie" and schemes["visitorCookie"]["name"] == "chatapp"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = path in PUBLIC or (path == "/api/share/{token}" and method == "get")
            protected = path.startswith("/api/") and not public
            # Public operations answer 401 too, to a wrong key (a key that is sent is checked everywhere).
            assert "401" in operation["responses"], (method, path)
            assert ("wrong API key" in operation["responses"]["401"]["description"]) != protected, (method, path)
            assert ("security" in operation) == protected, (method, path)
            if protected and method != "get":
                assert "CSRF" in operation["responses"]["400"]["description"], (method, path)
    limited = {
        (path, method)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "429" in operation["responses"]
    }
    assert limited == {
        ("/api/import", "post"),
        ("/api/session/create", "post"),
        ("/api/sessions/bulk", "post"),
        ("/api/sessions/{session_id}/messages", "post"),
        ("/api/sessions/{session_id}/reply", "post"),
        ("/api/sessions/{session_id}/stop", "post"),
        ("/api/sessions/{session_id}/messages/{index}", "put"),
        ("/api/sessions/{session_id}/messages/{index}/version", "put"),
        ("/api/sessions/{session_id}/shares", "post"),
        ("/api/share/{token}", "get"),
        ("/api/share/{token}/copy", "post"),
        ("/api/search", "get"),  # searches spend their own budget, GETs included
    }
