"""gunicorn.conf.py's defaults and overrides, and the app served by a real gunicorn."""

from __future__ import annotations

import gc
import http.client
import json
import os
import resource
import runpy
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn import util
from prometheus_client.parser import text_string_to_metric_families

from chatapp.settings import PROJECT_ROOT
from tests.helpers import OPERATOR_KEY, raw_http
from tests.servers import AppServer, free_port

CONF = PROJECT_ROOT / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).with_name("gunicorn")
ENV_NAMES = (
    "GUNICORN_BIND",
    "PORT",
    "GUNICORN_WORKERS",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_WORKER_CONNECTIONS",
    "CHATAPP_LLM_TIMEOUT",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_ACCESSLOG",
    "GUNICORN_CONTROL_SOCKET",
    "GUNICORN_ACCEPT_BATCH",
)


def load_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_serve_streams_without_blocking_and_outlast_the_model(monkeypatch):
    conf = load_conf(monkeypatch)
    cores = len(os.sched_getaffinity(0))

    assert conf["worker_class"] == "gevent"
    assert conf["workers"] == min(cores + 1, 12)
    assert conf["worker_connections"] == 4000  # ~1,000 streams and ~2,000 subscriptions, on any one worker
    assert conf["bind"] == "127.0.0.1:8000"
    assert conf["timeout"] == 120 > 60  # the model's default time-out
    assert conf["graceful_timeout"] == 30 and conf["keepalive"] == 5
    assert conf["accesslog"] == "-" and conf["errorlog"] == "-"
    assert conf["logger_class"].__name__ == "JsonLogger"  # lines built as dicts, written by json.dumps
    assert conf["control_socket_disable"] is True and "control_socket" not in conf


def test_a_control_socket_only_at_a_path_of_this_instances_own(monkeypatch):
    conf = load_conf(monkeypatch, GUNICORN_CONTROL_SOCKET="/run/chatapp/gunicorn.ctl")

    assert conf["control_socket"] == "/run/chatapp/gunicorn.ctl" and "control_socket_disable" not in conf


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GUNICORN_WORKERS": "3"}, {"workers": 3}),
        ({"WEB_CONCURRENCY": "5"}, {"workers": 5}),
        ({"GUNICORN_WORKERS": "2", "WEB_CONCURRENCY": "5"}, {"workers": 2}),
        ({"GUNICORN_THREADS": "16"}, {"threads": 16}),
        ({"GUNICORN_WORKER_CLASS": "gthread"}, {"worker_class": "gthread", "threads": 8}),
        ({"GUNICORN_WORKER_CONNECTIONS": "100"}, {"worker_connections": 100}),
        ({"GUNICORN_ACCEPT_BATCH": "4"}, {"_ACCEPT_BATCH": 4}),
        ({"PORT": "9000"}, {"bind": "0.0.0.0:9000"}),
        ({"GUNICORN_BIND": "unix:/run/chatapp.sock", "PORT": "9000"}, {"bind": "unix:/run/chatapp.sock"}),
        ({"CHATAPP_LLM_TIMEOUT": "300"}, {"timeout": 600}),
        ({"CHATAPP_LLM_TIMEOUT": "10"}, {"timeout": 120}),
        ({"GUNICORN_TIMEOUT": "45"}, {"timeout": 45}),
        ({"GUNICORN_ACCESSLOG": "none"}, {"accesslog": None}),
    ],
)
def test_environment_overrides(monkeypatch, env, expected):
    conf = load_conf(monkeypatch, **env)

    assert {name: conf[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("limits", "raised_to"),
    [((1024, 4096), (4096, 4096)), ((1024, resource.RLIM_INFINITY), (65536, resource.RLIM_INFINITY))],
)
def test_the_master_lets_its_workers_open_as_many_files_as_allowed(monkeypatch, limits, raised_to):
    """A stream is two sockets (client and model): a soft limit of 1,024 would cap a worker near 500."""
    conf = load_conf(monkeypatch)
    raised = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits)
    monkeypatch.setattr(resource, "setrlimit", lambda which, new: raised.append((which, new)))

    conf["on_starting"](None)

    assert raised == [(resource.RLIMIT_NOFILE, raised_to)]


@pytest.fixture
def gc_state():
    """post_worker_init tunes the collector of the process it runs in: this one, here."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_workers_set_the_apps_own_objects_aside_from_garbage_collection(monkeypatch, gc_state, worker_class):
    """A collection pauses every stream of a worker; the app's and libraries' objects live as
    long as the worker, so they are frozen, and young collections come less often."""
    from gunicorn.workers import ggevent

    conf = load_conf(monkeypatch)
    monkeypatch.setattr(util, "close", util.close)  # both put back after the test
    monkeypatch.setattr(ggevent, "StreamServer", ggevent.StreamServer)
    gc.unfreeze()

    conf["post_worker_init"](SimpleNamespace(cfg=SimpleNamespace(worker_class_str=worker_class)))

    assert gc.get_freeze_count() > 1000
    assert gc.get_threshold()[0] == 10_000


@pytest.mark.parametrize(("worker_class", "gevent"), [("gevent", True), ("gthread", False)])
@pytest.mark.usefixtures("gc_state")
def test_gevent_workers_drain_a_connection_before_closing_it_and_accept_in_batches(monkeypatch, worker_class, gevent):
    """gunicorn's async workers close at once: unread request bytes would reset the connection
    before the client reads the answer (a 413 to a body sent whole: tests/test_attacks.py). And
    with several workers each turn of a worker's loop accepted one connection (max_accept = 1)."""
    from gunicorn.workers import ggevent

    conf = load_conf(monkeypatch, GUNICORN_WORKERS="3")
    monkeypatch.setattr(util, "close", util.close)  # both put back after the test
    monkeypatch.setattr(ggevent, "StreamServer", ggevent.StreamServer)
    plain = ggevent.StreamServer

    conf["post_worker_init"](SimpleNamespace(cfg=SimpleNamespace(worker_class_str=worker_class)))
    server = object.__new__(ggevent.StreamServer)
    server.max_accept = 1  # what GeventWorker.run sets when there is more than one worker

    assert (util.close is util.close_graceful) is gevent
    assert (ggevent.StreamServer is not plain) is gevent
    assert server.max_accept == (16 if gevent else 1)


def test_a_non_numeric_override_is_a_clear_error(monkeypatch):
    with pytest.raises(SystemExit, match="GUNICORN_WORKERS='many' is not a number"):
        load_conf(monkeypatch, GUNICORN_WORKERS="many")


# --- a real gunicorn ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The servers' $HOME: where gunicorn would put its shared default control socket."""
    return tmp_path_factory.mktemp("home")


def gunicorn_env(redis_server, home: Path, port: int) -> dict[str, str | None]:
    return {
        "CHATAPP_ENV": "production",
        "CHATAPP_SECRET_KEY": "test-secret-key-for-gunicorn-run-0123456789",
        "CHATAPP_REDIS_URL": redis_server.url,
        "CHATAPP_API_KEYS": OPERATOR_KEY,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "HOME": str(home),
        "XDG_RUNTIME_DIR": None,  # gunicorn's first choice for the default socket
    }


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, redis_server, home):
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    multiproc = tmp_path_factory.mktemp("prometheus-multiproc")
    env = {
        **gunicorn_env(redis_server, home, port),
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    with AppServer([GUNICORN, "wsgi:app"], port, env=env, cwd=PROJECT_ROOT, log_path=log) as server:
        yield server


def request(server: AppServer, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        all_headers = {"Authorization": f"Bearer {OPERATOR_KEY}", "Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.redis
def test_gunicorn_reads_the_config_file_and_serves_the_app(gunicorn):
    status, headers, body = request(gunicorn, "GET", "/health", headers={"X-Request-ID": "probe-1"})

    assert status == 200 and json.loads(body)["redis"] == "ok"
    assert headers["X-Request-ID"] == "probe-1"
    log = gunicorn.log_path.read_text()
    assert "Using worker: gevent" in log
    assert log.count("Booting worker with pid") >= 2


@pytest.mark.redis
def test_gunicorn_opens_no_shared_control_socket(gunicorn, home):
    """Many instances on one host (these tests, blue/green deploys) would fight over ~/.gunicorn/gunicorn.ctl."""
    assert request(gunicorn, "GET", "/health")[0] == 200
    assert not (home / ".gunicorn").exists(), list((home / ".gunicorn").iterdir())


@pytest.mark.redis
def test_gunicorn_opens_its_own_control_socket_when_given_a_path(tmp_path, redis_server, home):
    port = free_port()
    own = tmp_path / "chatapp.ctl"
    env = {**gunicorn_env(redis_server, home, port), "GUNICORN_WORKERS": "1", "GUNICORN_CONTROL_SOCKET": str(own)}
    with AppServer([GUNICORN, "wsgi:app"], port, env=env, cwd=PROJECT_ROOT, log_path=tmp_path / "gunicorn.log"):
        deadline = time.monotonic() + 5  # the socket is bound by a thread of the master
        while not own.is_socket() and time.monotonic() < deadline:
            time.sleep(0.05)

        assert own.is_socket(), (tmp_path / "gunicorn.log").read_text()
    assert not (home / ".gunicorn").exists()


@pytest.mark.redis
def test_gunicorn_logs_json_lines_with_the_request_id_and_no_content(gunicorn):
    status, headers, body = request(gunicorn, "POST", "/api/session/create", {"user_id": "log reader"})
    sid = json.loads(body)["session_id"]
    request(
        gunicorn,
        "POST",
        f"/api/sessions/{sid}/messages",
        {"content": "zebra-secret-content"},
        headers={"X-Request-ID": "trace-post-1"},
    )

    # gunicorn writes its access line just after the response has gone out: wait for it
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(raw) for raw in gunicorn.log_path.read_text().splitlines() if raw.startswith("{")]
        # (other lines may carry the id too: the offline backend's hint to the operator, say)
        mine = [line for line in lines if line.get("request_id") == "trace-post-1" and "event" in line]
        if len(mine) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {line["event"] for line in mine} == {"request", "access"}
    app_line = next(line for line in mine if line["event"] == "request")
    assert app_line["status"] == 201 and app_line["principal"] == "operator"
    assert app_line["endpoint"] == "/api/sessions/<session_id>/messages"
    text = gunicorn.log_path.read_text()
    assert "zebra-secret-content" not in text and OPERATOR_KEY not in text


@pytest.mark.redis
def test_a_slow_client_does_not_block_other_requests(gunicorn):
    """A greenlet per connection: a connection stalled mid-request leaves the others served."""
    stalled = []
    for _ in range(4):  # more stalled connections than workers
        conn = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
        conn.putrequest("POST", "/api/session/create")
        conn.putheader("Authorization", f"Bearer {OPERATOR_KEY}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "100")
        conn.endheaders()  # the body never comes
        stalled.append(conn)
    results: list[int] = []
    workers = [
        threading.Thread(target=lambda: results.append(request(gunicorn, "GET", "/health")[0])) for _ in range(4)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)
    for conn in stalled:
        conn.close()

    assert results == [200, 200, 200, 200]


@pytest.mark.redis
def test_metrics_add_up_every_workers_requests(gunicorn):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape served by one worker counts all of them."""
    for i in range(20):  # a new connection each: gunicorn hands them to either worker
        assert request(gunicorn, "GET", f"/api/sessions/session_absent_{i}_x")[0] == 404

    status, headers, body = request(gunicorn, "GET", "/metrics")

    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    labels = frozenset({"method": "GET", "endpoint": "/api/sessions/<session_id>", "status": "404"}.items())
    assert samples[("chatapp_http_requests_total", labels)] == 20


def raw_request(server: AppServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    return raw_http(server.port, data)


def log_lines(server: AppServer) -> list[str]:
    """The server's log as written, less the test harness's own '=== start' header lines."""
    text = server.log_path.read_bytes().decode("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("=== start:")]


@pytest.mark.redis
def test_the_access_log_stays_one_json_object_per_line_under_a_hostile_path(gunicorn):
    hostile = b"GET /%1b%5b2J%0aFAKE%0d%00 HTTP/1.1\r\nHost: x\r\nX-Request-ID: hostile-1\r\nConnection: close\r\n\r\n"
    status, _, _ = raw_request(gunicorn, hostile)
    assert status == 404

    deadline = time.monotonic() + 10
    while True:
        parsed = [json.loads(line) for line in log_lines(gunicorn)]  # every line is JSON, or this raises
        mine = [line for line in parsed if line.get("request_id") == "hostile-1"]
        if len(mine) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {line["event"] for line in mine} == {"request", "access"}
    assert all(line["path"] == "/\x1b[2J\nFAKE\r\x00" for line in mine)  # shown, escaped by the encoder
    raw = gunicorn.log_path.read_bytes()
    for byte in (b"\x1b", b"\r", b"\x00"):
        assert byte not in raw
    assert all(isinstance(line, dict) for line in parsed)
    assert any(line.get("logger") == "gunicorn.error" and "Booting worker" in line["message"] for line in parsed)


@pytest.mark.redis
def test_the_access_log_never_holds_a_share_links_token(gunicorn):
    _, _, created = request(gunicorn, "POST", "/api/session/create", {"user_id": "sharer"})
    sid = json.loads(created)["session_id"]
    status, _, link = request(gunicorn, "POST", f"/api/sessions/{sid}/shares", {"expires_in": 60})
    assert status == 201, link
    token = json.loads(link)["url"].rsplit("/share/", 1)[1]
    assert request(gunicorn, "GET", f"/share/{token}")[0] == 200
    assert request(gunicorn, "GET", f"/api/share/{token}")[0] == 200
    assert request(gunicorn, "GET", f"/share/{token}/continue")[0] == 405  # (a POST)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        access = [json.loads(line) for line in log_lines(gunicorn) if '"event":"access"' in line.replace(" ", "")]
        paths = [line["path"] for line in access if "share/" in line["path"] and "/shares" not in line["path"]]
        if len(paths) >= 3:
            break
        time.sleep(0.05)
    assert sorted(paths)[-3:] == ["/api/share/<token>", "/share/<token>", "/share/<token>/continue"]
    assert token not in gunicorn.log_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /api/sessions/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"G\x00ET /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(200)) + b"\r\n", 431),
    ],
    ids=["request-line-over-4094", "nul-in-method", "http-9.9", "200-headers"],
)
@pytest.mark.redis
def test_what_gunicorn_refuses_itself_is_answered_in_the_json_envelope(gunicorn, data, status):
    answered, headers, body = raw_request(gunicorn, data)

    assert answered == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == status and error["message"]
