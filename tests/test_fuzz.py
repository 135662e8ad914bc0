"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, sent as an operator and as a
visitor against the app on the real test redis-server. No response may be a server error, and every response must
match the document: a documented status, a documented content type, a body matching the schema.

The document is read once at collection from an embedded-store app (it does not depend on
the store); each operation is then fuzzed against a fresh app on the real Redis. Bounded by
examples per operation and derandomized, so the run is repeatable and takes well under two
minutes.
"""

from __future__ import annotations

import contextlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chatapp.storage import ReplyRunning, get_store, make_message
from chatapp.storage.replies import new_reply_id
from tests.helpers import OPERATOR_KEY, AppFactory, Visitor

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}"}
EXAMPLES_PER_OPERATION = 100


def _operations() -> list:
    with AppFactory() as make_app:
        app = make_app(REDIS_URL="memory://")
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
        return [result.ok() for result in schema.get_all_operations()]


DOCUMENTED = _operations()
# The live channel is a subscription that never ends by itself: tests/test_live.py fuzzes
# what it accepts (its query and Last-Event-ID) and proves what it sends.
OPERATIONS = [operation for operation in DOCUMENTED if not operation.label.endswith("/events")]


@pytest.fixture
def fuzzed_app(redis_server, redis_db, make_app):
    # Limits stay on (their code runs on every request) but high enough not to hide the views.
    return make_app(
        REDIS_URL=redis_server.url,
        MESSAGE_RATE_LIMIT="100000 per minute",
        SESSION_RATE_LIMIT="100000 per minute",
        ADDRESS_MESSAGE_RATE_LIMIT="100000 per minute",
        ADDRESS_SESSION_RATE_LIMIT="100000 per minute",
        SEARCH_RATE_LIMIT="100000 per minute",
        SHARE_RATE_LIMIT="100000 per minute",
        ADDRESS_SHARE_RATE_LIMIT="100000 per minute",
        ADDRESS_SHARE_VIEW_RATE_LIMIT="100000 per minute",
        MAX_SHARES_PER_USER=0,
    )


def test_the_document_covers_every_api_operation():
    labels = {operation.label for operation in DOCUMENTED}

    assert len(labels) == 26
    assert "GET /api/search" in labels
    assert "POST /api/sessions/{session_id}/messages" in labels
    assert "POST /api/sessions/{session_id}/reply" in labels
    assert "PUT /api/sessions/{session_id}/messages/{index}" in labels
    assert "PUT /api/sessions/{session_id}/messages/{index}/version" in labels


class Caller:
    """Who sends the fuzzed requests: the operator (key) or a visitor (cookie plus CSRF token)."""

    def __init__(self, app, who: str) -> None:
        self.visitor = Visitor(app) if who == "visitor" else None
        self.client = self.visitor.client if self.visitor else app.test_client()
        self.headers = {"X-CSRFToken": self.visitor.csrf_token} if self.visitor else AUTH
        self.cookies = {app.config["SESSION_COOKIE_NAME"]: self.visitor.cookie} if self.visitor else {}

    def live_session(self) -> tuple[str, str]:
        """(session id, user id) of one of the caller's sessions that exists now, with a message."""
        sessions = self.client.get("/api/sessions", headers=self.headers).get_json()["sessions"]
        if sessions:
            return sessions[0]["session_id"], sessions[0]["user_id"]
        created = self.client.post("/api/session/create", json={"user_id": "John Doe"}, headers=self.headers)
        session = created.get_json()
        self.client.post(
            f"/api/sessions/{session['session_id']}/messages", json={"content": "Hi"}, headers=self.headers
        )
        return session["session_id"], session["user_id"]

    def new_share(self, session_id: str) -> dict[str, str]:
        """A new share link to the session: its share_id and its token (a revoked one is gone)."""
        made = self.client.post(f"/api/sessions/{session_id}/shares", json={"expires_in": None}, headers=self.headers)
        link = made.get_json()
        return {"share_id": link["share_id"], "token": link["url"].rsplit("/", 1)[1]}


@pytest.mark.parametrize("who", ["operator", "visitor"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_api_never_errors_and_matches_its_document(fuzzed_app, operation, who):
    caller = Caller(fuzzed_app, who)
    statuses: list[int] = []
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases, target=st.sampled_from(["generated", "session id", "user id"]))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case, target):
        # Random ids only ever find nothing; aim a share of the cases at one of the caller's sessions.
        if target != "generated" and case.path_parameters:
            session_id, user_id = caller.live_session()
            link = caller.new_share(session_id) if {"token", "share_id"} & set(case.path_parameters) else {}
            for name in case.path_parameters:
                case.path_parameters[name] = user_id if target == "user id" and name == "user_id" else session_id
                case.path_parameters[name] = link.get(name, case.path_parameters[name])
            if "index" in case.path_parameters:
                case.path_parameters["index"] = 0  # the session's first message: its last user message
                if isinstance(case.body, dict) and isinstance(case.body.get("version"), int):
                    case.body["version"] = 0  # the version it has
            if operation.label.endswith("/reply"):
                # A retry answers only when the last message is the user's, as after a failed reply.
                with fuzzed_app.app_context():
                    get_store().append_messages(session_id, [make_message("user", "Once more")])
            if operation.label.endswith("/stop"):
                # Stop answers 202 only while a reply runs: claim one (no job writes it; its lease ends).
                with fuzzed_app.app_context(), contextlib.suppress(ReplyRunning):
                    get_store().begin_reply(session_id, new_reply_id(), [], 0, None)
        # A visitor's cases may also carry a generated (wrong) bearer key from the document's
        # security schemes: those must get 401, which is documented.
        response = case.call_and_validate(app=fuzzed_app, headers=caller.headers, cookies=caller.cookies, checks=CHECKS)
        statuses.append(response.status_code)

    fuzz()

    # The run really explored the operation: many requests, and some reached a successful answer.
    has_inputs = bool(operation.path_parameters or operation.query or operation.body)
    assert len(statuses) >= (EXAMPLES_PER_OPERATION if has_inputs else 1)
    assert any(200 <= status < 300 for status in statuses), sorted(set(statuses))
