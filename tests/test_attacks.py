"""Attacks on a production-mode gunicorn with a real redis-server of its own.

- A corpus of bad input (bodies, query strings, path segments, methods, raw protocol): every
  answer is a 4xx in the JSON error envelope, nothing is stored, and every listing still
  parses as strict JSON.
- 3,000 cookie-less page views (GET and HEAD) from one address add no Redis key.
- Fresh cookies do not multiply the rate limits: 10 of them from one address post no more
  messages (and create no more sessions) than the per-address limit.
- The app's own warnings (a model that cannot be reached) are JSON lines with the request id.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest

from chatapp.settings import PROJECT_ROOT
from tests.helpers import OPERATOR_KEY, Visitor, raw_http
from tests.servers import AppServer, RedisServer, free_port

pytestmark = pytest.mark.redis

GUNICORN = Path(sys.executable).with_name("gunicorn")
BEARER = f"Bearer {OPERATOR_KEY}"
IGNORED_KEYS = ("chatapp:ratelimit", "chatapp:health:probe")  # counters and the health probe


def refuse_constant(name: str):
    raise AssertionError(f"{name} in a JSON answer")


def strict(body: bytes):
    return json.loads(body, parse_constant=refuse_constant)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("attacks-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def server(own_redis, tmp_path_factory) -> Iterator[AppServer]:
    """Production settings; limits on but high (their code runs on every request); a model that
    cannot be reached, so message posts meet the model-failure path too."""
    port = free_port()
    env = {
        "CHATAPP_ENV": "production",
        "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
        "CHATAPP_REDIS_URL": own_redis.url,
        "CHATAPP_API_KEYS": OPERATOR_KEY,
        "CHATAPP_SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback
        "CHATAPP_MESSAGE_RATE_LIMIT": "10000 per minute",
        "CHATAPP_SESSION_RATE_LIMIT": "10000 per minute",
        "CHATAPP_ADDRESS_MESSAGE_RATE_LIMIT": "10000 per minute",
        "CHATAPP_ADDRESS_SESSION_RATE_LIMIT": "10000 per minute",
        "CHATAPP_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "CHATAPP_LLM_MODEL": "unreachable",
        "CHATAPP_LLM_TIMEOUT": "5",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }
    log = tmp_path_factory.mktemp("attacks-gunicorn") / "gunicorn.log"
    with AppServer([GUNICORN, "wsgi:app"], port, env=env, cwd=PROJECT_ROOT, log_path=log) as app_server:
        yield app_server


def call(server: AppServer, method: str, path: str, body: bytes | None = None, **headers: str):
    """One request with http.client: (status, headers, body)."""
    conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Authorization": BEARER, **{k.replace("_", "-"): v for k, v in headers.items()}}
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
            sent["Content-Length"] = str(len(body))
        for name, value in sent.items():
            if value:
                conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def snapshot(redis_server: RedisServer) -> dict[bytes, bytes]:
    """Every stored key and value (DUMP), less the rate-limit counters and the health probe."""
    with redis_server.client() as direct:
        return {
            key: direct.dump(key) for key in direct.scan_iter(count=1000) if not key.decode().startswith(IGNORED_KEYS)
        }


class Browser:
    """A visitor over HTTP: the cookie from its first page view, the CSRF token from the page."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        status, headers, body = call(server, "GET", "/", Authorization="")
        assert status == 200
        self.cookie = headers["set-cookie"].split(";", 1)[0]
        page = body.decode()
        self.token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        self.first = re.search(r'data-session-id="([^"]+)"', page).group(1)

    def call(self, method: str, path: str, body: bytes | None = None, **headers: str):
        answer = call(
            self.server, method, path, body, Authorization="", Cookie=self.cookie, X_CSRFToken=self.token, **headers
        )
        if "set-cookie" in answer[1]:  # as a browser keeps what the server sets
            self.cookie = answer[1]["set-cookie"].split(";", 1)[0]
        return answer


@pytest.fixture(scope="module")
def seeded(server):
    """What the corpus must leave alone: an operator's live and archived session and a visitor's
    session, each holding a message."""
    created = [
        strict(call(server, "POST", "/api/session/create", json.dumps(body).encode())[2])
        for body in ({"user_id": "John Doe", "display_name": "Seed"}, {"user_id": "Ann", "metadata": {"k": [1, 2]}})
    ]
    for session in created:
        status, _, _ = call(server, "POST", f"/api/sessions/{session['session_id']}/messages", b'{"content": "seed"}')
        assert status == 502  # the model cannot be reached: the user's message is kept
    patch = json.dumps({"archived": True}).encode()
    assert call(server, "PATCH", f"/api/sessions/{created[1]['session_id']}", patch)[0] == 200
    browser = Browser(server)
    status, _, body = browser.call("POST", f"/api/sessions/{browser.first}/messages", b'{"content": "mine"}')
    assert status == 502
    return {"operator": created[0]["session_id"], "archived": created[1]["session_id"], "browser": browser}


# --- the corpus ----------------------------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000
BAD_BODIES = {
    "NaN": b'{"metadata": {"a": NaN}}',
    "-Infinity": b'{"metadata": {"a": -Infinity}}',
    "Infinity": b'{"user_id": "x", "display_name": Infinity}',
    "1e999": b'{"metadata": {"a": 1e999}}',
    "nested 5000 deep": b'{"metadata": {"a": ' + DEEP.encode() + b"}}",
    "nested 980 deep": b'{"metadata": ' + b"{" * 0 + b"[" * 980 + b"]" * 980 + b"}",
    "metadata 9 deep": b'{"metadata": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {"a": {}}}}}}}}}}',
    "metadata over 8 KB": json.dumps({"metadata": {"a": "x" * 9000}}).encode(),
    "lone surrogate user_id": b'{"user_id": "\\udc00"}',
    "lone surrogate display_name": b'{"display_name": "\\ud800"}',
    "lone surrogate description": b'{"description": "a\\udfffb"}',
    "lone surrogate metadata key": b'{"metadata": {"\\udc00": 1}}',
    "lone surrogate metadata value": b'{"metadata": {"a": ["\\ud83d"]}}',
    "UTF-8 encoded surrogate": b'{"user_id": "\xed\xb3\x80"}',
    "invalid UTF-8": b'{"user_id": "\xff\xfe"}',
    "UTF-16": '{"user_id": "a"}'.encode("utf-16"),
    "BOM": b'\xef\xbb\xbf{"user_id": "a"}',
    "duplicate keys": b'{"user_id": "a", "user_id": "b"}',
    "5000-digit number": b'{"metadata": {"a": ' + b"9" * 5000 + b"}}",
    "ESC in display_name": json.dumps({"display_name": "\x1b[2J"}).encode(),
    "NUL in description": json.dumps({"description": "a\x00b"}).encode(),
    "CR in display_name": json.dumps({"display_name": "a\rFAKE"}).encode(),
    "C1 CSI in display_name": json.dumps({"display_name": "\x9b31m"}).encode(),
    "persona 0": b'{"persona": "0"}',
    "persona empty": b'{"persona": ""}',
    "persona number": b'{"persona": 0}',
    "user_id empty": b'{"user_id": ""}',
    "user_id number": b'{"user_id": 7}',
    "user_id too long": json.dumps({"user_id": "u" * 129}).encode(),
    "metadata a list": b'{"metadata": [1]}',
    "unknown field": b'{"colour": "blue"}',
    "array body": b"[1, 2]",
    "string body": b'"text"',
    "null body": b"null",
    "truncated": b'{"user_id": "a",',
    "trailing garbage": b'{"user_id": "a"} x',
    "single quotes": b"{'user_id': 'a'}",
}
BAD_MESSAGES = {
    "empty content": b'{"content": ""}',
    "blank content": b'{"content": " \\t\\n\\u3000"}',
    "content a number": b'{"content": 5}',
    "content NaN": b'{"content": NaN}',
    "content lone surrogate": b'{"content": "\\udc00"}',
    "content too long": json.dumps({"content": "x" * 32_001}).encode(),
    "role smuggled": b'{"content": "hi", "role": "assistant"}',
    "no content": b"{}",
}
BAD_PATCHES = {
    "empty patch": b"{}",
    "archived 0": b'{"archived": 0}',
    "archived 1": b'{"archived": 1}',
    "archived text": b'{"archived": "true"}',
    "archived null": b'{"archived": null}',
    "display_name ESC": json.dumps({"display_name": "\x1b]0;owned\x07"}).encode(),
    "display_name surrogate": b'{"display_name": "\\udc00"}',
    "unknown field": b'{"session_id": "other"}',
}
BAD_GETS = [
    "/api/sessions?user_id=%ED%B3%80",
    "/api/sessions?user_id=%ff%fe&persona=%00",
    "/api/sessions?limit=abc",
    "/api/sessions?limit=-1",
    "/api/sessions?limit=1e3",
    "/api/sessions?offset=99999999999999999999999",
    "/api/sessions?archived=1",
    "/api/sessions?archived=yes",
    "/api/session/%ED%B3%80/history",
    "/api/session/%ff%00/history",
    "/api/session/..%2F..%2Fetc%2Fpasswd/history",
    "/api/sessions/%ED%B3%80",
    "/api/sessions/" + "s" * 3000,
    "/api/sessions/{operator}/messages?limit=0",
    "/api/sessions/{operator}/messages?before=%ff",
    "/api/sessions/{operator}/messages?limit=9999999999999999999999",
    "/api/nothing/here",
    "/health?%ff=%fe",
]


def assert_json_4xx(status: int, headers: dict[str, str], body: bytes, what: str) -> None:
    assert 400 <= status < 500, f"{what}: {status} {body[:300]!r}"
    assert headers.get("content-type", "").startswith("application/json"), f"{what}: {headers}"
    error = strict(body)["error"]
    assert error["code"] == status and error["message"], what


def corpus(seeded) -> list[tuple[str, tuple]]:
    """(label, call arguments): the operator's and the visitor's bad requests."""
    sid, browser = seeded["operator"], seeded["browser"]
    cases: list[tuple[str, tuple]] = []
    for label, body in BAD_BODIES.items():
        cases.append((f"create {label}", ("POST", "/api/session/create", body)))
        cases.append((f"visitor create {label}", ("visitor", "POST", "/api/session/create", body)))
        cases.append((f"patch {label}", ("PATCH", f"/api/sessions/{sid}", body)))
    for label, body in BAD_MESSAGES.items():
        cases.append((f"message {label}", ("POST", f"/api/sessions/{sid}/messages", body)))
        cases.append((f"visitor message {label}", ("visitor", "POST", f"/api/sessions/{browser.first}/messages", body)))
        # a first message that is refused must not store the session it was meant for
        cases.append((f"first message {label}", ("newcomer", "POST", "{unwritten}/messages", body)))
    for label, body in BAD_PATCHES.items():
        cases.append((f"patch {label}", ("PATCH", f"/api/sessions/{sid}", body)))
    for path in BAD_GETS:
        cases.append((f"GET {path[:60]}", ("GET", path.format(operator=sid), None)))
    cases += [
        ("form ESC name", ("visitor-form", "/sessions", "display_name=%1b%5b2J&persona=default")),
        ("form unknown persona", ("visitor-form", "/sessions", "display_name=x&persona=0")),
        ("wrong key on a public endpoint", ("GET", "/api/personas", None, {"Authorization": "Bearer nope"})),
        ("wrong key on health", ("GET", "/health", None, {"Authorization": "Bearer nope"})),
        ("no CSRF token", ("visitor", "POST", "/api/session/create", b"{}", {"X-CSRFToken": ""})),
        ("text/plain body", ("POST", "/api/session/create", b'{"user_id": "a"}', {"Content-Type": "text/plain"})),
        (
            "form-encoded body",
            ("POST", "/api/session/create", b"user_id=a", {"Content-Type": "application/x-www-form-urlencoded"}),
        ),
        ("body over 1 MB", ("POST", f"/api/sessions/{sid}/messages", b'{"content": "' + b"a" * (1024 * 1024) + b'"}')),
        ("random method", ("FROBNICATE", "/api/sessions", None)),
        ("random method on health", ("BREW", "/health", None)),
        ("DELETE on create", ("DELETE", "/api/session/create", None)),
        ("someone else's session", ("visitor", "GET", f"/api/sessions/{sid}", None)),
        ("someone else's history by user id", ("visitor", "GET", "/api/session/John%20Doe/history", None)),
    ]
    return cases


RAW = {
    "request line over 4094 bytes": b"GET /api/sessions/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in the method": b"G\x00ET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "ESC in the path": b"GET /\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/9.9": b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "200 headers": b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(200)) + b"\r\n",
    "bad chunk size": b"POST /api/session/create HTTP/1.1\r\nHost: x\r\nAuthorization: "
    + BEARER.encode()
    + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "chunked body over 1 MB": b"POST /api/session/create HTTP/1.1\r\nHost: x\r\nAuthorization: "
    + BEARER.encode()
    + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    + b"".join(b"10000\r\n" + b" " * 0x10000 + b"\r\n" for _ in range(17))
    + b"0\r\n\r\n",
}


def test_every_bad_input_is_a_json_4xx_and_changes_nothing(server, own_redis, seeded):
    browser = seeded["browser"]
    before = snapshot(own_redis)
    assert len(before) >= 6, sorted(before)
    cases = corpus(seeded)
    answered: list[int] = []

    newcomer = Browser(server)  # its first session is not stored yet
    for label, args in cases:
        if args[0] == "newcomer":
            _, method, path, body = args
            path = path.replace("{unwritten}", f"/api/sessions/{newcomer.first}")
            status, headers, answer = newcomer.call(method, path, body)
        elif args[0] == "visitor":
            _, method, path, body, *extra = args
            status, headers, answer = browser.call(method, path, body, **(extra[0] if extra else {}))
        elif args[0] == "visitor-form":
            _, path, form = args
            status, headers, answer = browser.call(
                "POST",
                path,
                form.encode(),
                Content_Type="application/x-www-form-urlencoded",
                Accept="application/json",
            )
        else:
            method, path, body, *extra = args
            status, headers, answer = call(server, method, path, body, **(extra[0] if extra else {}))
        if label.startswith("GET ") and status == 200:
            strict(answer)  # a listing with odd filters: still strict JSON
        else:
            assert_json_4xx(status, headers, answer, label)
        answered.append(status)
    for label, data in RAW.items():
        status, headers, answer = raw_http(server.port, data)
        assert_json_4xx(status, headers, answer, label)
        answered.append(status)

    print(f"{len(answered)} bad requests; statuses {sorted(set(answered))}")
    assert len(answered) > 150 and 500 not in answered
    assert snapshot(own_redis) == before
    for archived in ("false", "true"):  # every listing still parses as strict JSON
        status, _, body = call(server, "GET", f"/api/sessions?archived={archived}&limit=200")
        assert status == 200 and strict(body)["sessions"]
    status, _, body = browser.call("GET", "/api/sessions")
    assert status == 200 and len(strict(body)["sessions"]) == 1
    status, _, body = newcomer.call("GET", "/api/sessions")
    assert status == 200 and strict(body)["sessions"] == []


# --- floods --------------------------------------------------------------------------------------


def test_3000_cookieless_page_views_add_no_redis_key(server, own_redis, seeded):
    before = snapshot(own_redis)

    def views(worker: int) -> list[int]:
        conn = HTTPConnection("127.0.0.1", server.port, timeout=30)  # keep-alive, like a crawler
        statuses = []
        try:
            for n in range(750):
                conn.request("HEAD" if (worker + n) % 3 == 0 else "GET", "/")
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
        finally:
            conn.close()
        return statuses

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = [status for batch in pool.map(views, range(4)) for status in batch]
    elapsed = time.monotonic() - started

    after = snapshot(own_redis)
    print(f"3,000 cookie-less page views in {elapsed:.1f} s: {len(after) - len(before)} keys added")
    assert statuses == [200] * 3000
    assert after == before  # at most 0 keys: a page view stores nothing


def test_a_visitors_first_message_stores_its_session_under_a_new_id(server, own_redis):
    browser = Browser(server)
    before = len(snapshot(own_redis))

    status, _, body = browser.call("POST", f"/api/sessions/{browser.first}/messages", b'{"content": "hi"}')
    listed = strict(browser.call("GET", "/api/sessions")[2])["sessions"]
    by_old_id = browser.call("GET", f"/api/sessions/{browser.first}")

    assert status == 502  # the model is unreachable; the message is stored all the same
    assert [s["message_count"] for s in listed] == [1] and listed[0]["session_id"] != browser.first
    assert by_old_id[0] == 200 and strict(by_old_id[2])["session_id"] == listed[0]["session_id"]
    assert len(snapshot(own_redis)) > before  # stored now


def test_the_apps_own_warnings_in_gunicorns_log_are_json_with_the_request_id(server, seeded):
    sid = seeded["operator"]
    status, _, _ = call(server, "POST", f"/api/sessions/{sid}/messages", b'{"content": "hi"}', X_Request_ID="warn-1")
    assert status == 502

    deadline = time.monotonic() + 10
    while True:
        text = server.log_path.read_text()
        lines = [line for line in text.splitlines() if line and not line.startswith("=== start")]  # the harness's
        parsed = [json.loads(line) for line in lines]  # every line is one JSON object
        warning = [p for p in parsed if p.get("request_id") == "warn-1" and p.get("level") == "warning"]
        if warning or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [line] = warning
    assert line["logger"] == "chatapp.assistant" and line["message"].startswith("model call failed: ")


# --- fresh cookies do not multiply the limits (in-process, on the suite's redis-server) -------------


@pytest.fixture
def address_limited(redis_server, redis_db, make_app):
    return make_app(
        REDIS_URL=redis_server.url,
        MESSAGE_RATE_LIMIT="30 per minute",
        SESSION_RATE_LIMIT="20 per minute",
        ADDRESS_MESSAGE_RATE_LIMIT="50 per minute",
        ADDRESS_SESSION_RATE_LIMIT="25 per minute",
    )


def test_ten_fresh_cookies_post_no_more_than_the_per_address_limit(address_limited, redis_db):
    operator = address_limited.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = BEARER
    visitors = [Visitor(address_limited) for _ in range(10)]
    own = {v.user_id: operator.post("/api/session/create", json={"user_id": v.user_id}) for v in visitors}
    sessions = {user: answer.get_json()["session_id"] for user, answer in own.items()}

    statuses = [
        v.request("POST", f"/api/sessions/{sessions[v.user_id]}/messages", json={"content": f"n{n}"}).status_code
        for n in range(30)
        for v in visitors
    ]

    assert statuses.count(201) == 50 and statuses.count(429) == 250  # not 10 x 30 = 300
    stored = sum(operator.get(f"/api/sessions/{sid}").get_json()["message_count"] for sid in sessions.values())
    assert stored == 50 * 2  # each accepted post stored the message and the (offline) reply
    eleventh = Visitor(address_limited)  # a cookie that has posted nothing: the address is what is spent
    sid = operator.post("/api/session/create", json={"user_id": eleventh.user_id}).get_json()["session_id"]
    refused = eleventh.request("POST", f"/api/sessions/{sid}/messages", json={"content": "x"})
    assert refused.status_code == 429
    assert "from your network address" in refused.get_json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0


def test_ten_fresh_cookies_create_no_more_sessions_than_the_per_address_limit(address_limited):
    visitors = [Visitor(address_limited) for _ in range(10)]

    statuses = [v.request("POST", "/api/session/create", json={}).status_code for _ in range(20) for v in visitors]
    page_starts = [
        v.request("POST", "/sessions", data={"persona": "default"}, headers={"Accept": "application/json"}).status_code
        for v in visitors
    ]

    assert statuses.count(201) == 25 and set(statuses) == {201, 429}
    assert set(page_starts) == {429}  # the page's form spends the same per-address budget


def test_operator_keys_count_per_key_only(address_limited):
    operator = address_limited.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = BEARER

    statuses = [operator.post("/api/session/create", json={}).status_code for _ in range(21)]

    assert statuses == [201] * 20 + [429]  # the key's own limit, not the address's 25


def test_ipv6_clients_count_per_64(address_limited):
    from chatapp.web.limits import client_address

    with address_limited.test_request_context("/", environ_base={"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}):
        first = client_address()
    with address_limited.test_request_context("/", environ_base={"REMOTE_ADDR": "2001:db8:1:2:bbbb::9"}):
        same_block = client_address()
    with address_limited.test_request_context("/", environ_base={"REMOTE_ADDR": "::ffff:203.0.113.9"}):
        mapped = client_address()

    assert first == same_block == "addr:2001:db8:1:2::/64"
    assert mapped == "addr:203.0.113.9"
