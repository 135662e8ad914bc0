"""Export is lossless: export -> import -> export gives the same document apart from the session ids
and the export's time, whatever the sessions hold (a property test on the real redis-server)."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatapp.storage import get_store, make_message
from tests.helpers import OPERATOR_KEY
from tests.transfer_helpers import export_json, post_import, without_ids

NAME_CHARACTERS = st.characters(blacklist_categories=("Cs", "Cc"))  # names hold no control characters
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
METADATA = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4)
VERSIONS = st.lists(st.fixed_dictionaries({"content": st.text(max_size=40), "model": st.text(max_size=10)}), max_size=2)
MESSAGE = st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=200), METADATA, st.none() | VERSIONS)
SESSION = st.fixed_dictionaries(
    {
        "persona": st.sampled_from(["default", "mental_health_nurse", "technical_support", "creative_writer"]),
        "display_name": st.none() | st.text(NAME_CHARACTERS, min_size=1, max_size=100),
        "description": st.none() | st.text(NAME_CHARACTERS, min_size=1, max_size=300),
        "metadata": METADATA,
        "messages": st.lists(MESSAGE, max_size=6),  # empty sessions too
    }
)


@pytest.fixture
def unlimited(redis_server, redis_db, make_app) -> tuple[Flask, FlaskClient]:
    """The app on the real redis-server, rate limits off (each example imports once)."""
    app = make_app(REDIS_URL=redis_server.url, RATELIMIT_ENABLED=False)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {OPERATOR_KEY}"
    return app, client


def store_sessions(app, user_id: str, sessions: list[dict]) -> list[str]:
    """The sessions as the app stores them (archived, so an import gives them back as they were)."""
    ids = []
    with app.app_context():
        store = get_store()
        for spec in sessions:
            created = store.create_session(
                user_id, spec["persona"], spec["display_name"], spec["description"], spec["metadata"]
            )
            messages = []
            for role, content, metadata, versions in spec["messages"]:
                message = make_message(role, content, metadata)
                if versions is not None:
                    message["versions"] = versions
                messages.append(message)
            if messages:
                store.append_messages(created["session_id"], messages, announced=False)
            store.update_session(created["session_id"], {"archived": True})
            ids.append(created["session_id"])
    return ids


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions=st.lists(SESSION, min_size=1, max_size=4))
def test_export_import_export_gives_the_same_document(unlimited, sessions):
    app, client = unlimited
    user_id = f"Roundtrip {uuid.uuid4().hex[:8]} ✓"
    ids = store_sessions(app, user_id, sessions)

    exported = export_json(client, session_ids=ids)
    imported = post_import(client, json.dumps(exported, ensure_ascii=False).encode(), user_id=user_id)
    assert imported.status_code == 200, imported.get_json()
    answer = imported.get_json()
    again = export_json(client, session_ids=[s["session_id"] for s in answer["sessions"]])

    assert answer["imported"] == len(sessions) and answer["skipped"] == []
    assert without_ids(again) == without_ids(exported)
    assert {s["session_id"] for s in again["sessions"]}.isdisjoint(ids)
