"""What the app writes for people to read cannot be forged or blown up by what visitors send:
the operator's terminal (flask sessions …) and /metrics."""

from __future__ import annotations

import json
import logging
import random
import string
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import EnvironBuilder

from chatapp.cli.output import printable
from chatapp.storage import get_store, make_message
from chatapp.web.metrics import METHODS
from chatapp.web.request_log import JsonFormatter
from tests.helpers import OPERATOR_KEY
from tests.servers import free_port

# Clear the screen, move the cursor home, rewrite the line, a NUL, an 8-bit CSI, a bidi override.
HOSTILE = "\x1b[2J\x1b[H\rFAKE\x00\x9b31m\u202eevil"
RAW_CONTROL = ("\x1b", "\r", "\x00", "\x9b", "\u202e")


@pytest.fixture
def hostile_session(app) -> str:
    """A session as an old release (or a visitor before names were checked) could have stored it."""
    with app.app_context():
        store = get_store()
        session = store.create_session(user_id=f"user{HOSTILE}", persona="default", display_name=HOSTILE)
        content = f"first line\n\tindented {HOSTILE}"
        store.append_messages(session["session_id"], [make_message("user", content)])
    return session["session_id"]


@pytest.mark.parametrize("args", [["show", "{sid}"], ["show", "{sid}", "--json"], ["list"], ["list", "--json"]])
def test_cli_output_shows_control_characters_escaped(app, hostile_session, args):
    result = app.test_cli_runner().invoke(
        args=["sessions", *(a.format(sid=hostile_session) for a in args)], catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    for char in RAW_CONTROL:
        assert char not in result.output, f"{char!r} reached the terminal"
    assert "FAKE" in result.output  # shown, as text
    if "--json" in args:
        assert "\\u001b[2J" in result.output and "\\u009b" in result.output
    else:
        assert "\\x1b[2J\\x1b[H\\x0dFAKE\\x00\\x9b31m\\u202eevil" in result.output


def test_sessions_show_keeps_a_messages_own_line_breaks(app, hostile_session):
    output = app.test_cli_runner().invoke(args=["sessions", "show", hostile_session]).output

    assert "user: first line\n\tindented \\x1b[2J" in output


def test_printable_escapes_only_what_a_terminal_would_act_on():
    assert printable("Zoë 😀 日本") == "Zoë 😀 日本"
    assert printable("a\tb\nc") == "a\\x09b\\x0ac"
    assert printable("a\tb\nc", lines=True) == "a\tb\nc"
    assert printable("\x7f\x85\u200f") == "\\x7f\\x85\\u200f"


def test_20000_random_methods_leave_metrics_small(memory_app, caplog):
    """gunicorn passes any upper-case word as a method; each used to become a series of its own."""
    caplog.set_level(logging.WARNING)  # 20,000 request lines would only slow the test down
    rng = random.Random(17)
    base = EnvironBuilder(path="/health").get_environ()
    statuses: list[str] = []
    started = time.monotonic()
    while len(statuses) < 20_000:
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
        if method not in METHODS:  # straight into the WSGI app: the test client would double the time
            body = memory_app.wsgi_app({**base, "REQUEST_METHOD": method}, lambda status, _: statuses.append(status))
            b"".join(body)
    assert set(statuses) == {"405 METHOD NOT ALLOWED"}
    elapsed = time.monotonic() - started

    body = (
        memory_app.test_client()
        .get("/metrics", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
        .get_data(as_text=True)
    )

    methods = {
        sample.labels["method"]
        for family in text_string_to_metric_families(body)
        if family.name == "chatapp_http_requests"
        for sample in family.samples
    }
    print(f"20,000 random-method requests in {elapsed:.1f} s; /metrics is {len(body.encode()):,} bytes")
    assert methods == {"other"}
    assert len(body.encode()) < 100 * 1024


class Lines(logging.Handler):
    """What a JSON handler on the app's logger writes, line by line, formatted as it is emitted."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def app_log_lines():
    handler = Lines()
    logging.getLogger("chatapp").addHandler(handler)
    yield handler.lines
    logging.getLogger("chatapp").removeHandler(handler)


def test_the_apps_own_warnings_are_json_lines_with_the_request_id(make_app, app_log_lines):
    """A model that cannot be reached used to print `model call failed: …` as bare text."""
    app = make_app(REDIS_URL="memory://", LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", LLM_MODEL="m")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    sid = client.post("/api/session/create", json={}).get_json()["session_id"]

    answer = client.post(f"/api/sessions/{sid}/messages", json={"content": "hi"}, headers={"X-Request-ID": "w-1"})

    assert answer.status_code == 502
    parsed = [json.loads(line) for line in app_log_lines]  # every line is one JSON object
    [line] = [p for p in parsed if p.get("message", "").startswith("model call failed")]
    assert line["level"] == "warning" and line["logger"] == "chatapp.assistant"
    assert line["request_id"] == "w-1" and line["time"].endswith("+00:00")


def test_log_lines_escape_what_a_terminal_would_act_on():
    record = logging.LogRecord("chatapp.x", logging.ERROR, __file__, 1, "bad %s", (HOSTILE,), None)

    text = JsonFormatter().format(record)

    assert json.loads(text)["message"] == f"bad {HOSTILE}" and json.loads(text)["request_id"] is None
    assert text.isascii() and text.isprintable()
