"""Hypothesis properties of the request and response schemas."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from chatapp.schemas import (
    MessageSchema,
    message_create_schema,
    messages_query_schema,
    session_create_schema,
    session_list_query_schema,
    session_patch_schema,
)
from chatapp.schemas.base import json_depth
from tests.helpers import OPERATOR_KEY, AppFactory

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
metadata = st.dictionaries(st.text(max_size=20), json_values, max_size=5).filter(
    lambda value: len(json.dumps(value, separators=(",", ":")).encode()) <= 8 * 1024 and json_depth(value) <= 8
)
persona_ids = st.sampled_from(["default", "mental_health_nurse"])


@pytest.fixture(scope="module")
def unlimited_app():
    with AppFactory() as make_app:  # module-scoped: the function-scoped make_app fixture cannot serve it
        yield make_app(REDIS_URL="memory://", RATELIMIT_ENABLED=False)


# What a person may type into a name or description: anything but control characters (tab and
# newline stay allowed).
typed_text_alphabet = st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\t\n")


def optional_text(max_size: int):
    return st.none() | st.text(typed_text_alphabet, max_size=max_size)


valid_create_bodies = st.fixed_dictionaries(
    {},
    optional={
        "user_id": st.text(min_size=1, max_size=128),
        "persona": st.text(min_size=1, max_size=64),
        "metadata": metadata,
        "display_name": optional_text(100),
        "description": optional_text(1000),
    },
)


@FAST
@given(body=valid_create_bodies)
def test_session_create_accepts_every_valid_body_and_keeps_its_values(body):
    loaded = session_create_schema.load(body)

    assert {key: loaded[key] for key in body} == body
    assert loaded["persona"] == body.get("persona", "default")
    assert loaded["metadata"] == body.get("metadata", {})
    assert session_create_schema.load(session_create_schema.dump(loaded)) == loaded


OVER_LONG = [("user_id", 128), ("persona", 64), ("display_name", 100), ("description", 1000)]


@pytest.mark.parametrize(("field", "limit"), OVER_LONG)
@FAST
@given(extra=st.integers(min_value=1, max_value=500), char=st.characters(codec="utf-8"))
def test_session_create_rejects_over_long_fields_by_name(field, limit, extra, char):
    with pytest.raises(ValidationError) as error:
        session_create_schema.load({field: char * (limit + extra)})

    assert set(error.value.messages) == {field}


@FAST
@given(
    name=st.text(min_size=1, max_size=20).filter(
        lambda name: name not in {"user_id", "persona", "metadata", "display_name", "description"}
    )
)
def test_session_create_names_unknown_fields(name):
    with pytest.raises(ValidationError) as error:
        session_create_schema.load({name: "x"})

    assert set(error.value.messages) == {name}


@FAST
@given(size=st.integers(min_value=8 * 1024 + 1, max_value=20_000))
def test_metadata_over_8_kb_is_refused_by_name(size):
    body = {"metadata": {"k": "v" * (size - len('{"k":""}'))}}

    with pytest.raises(ValidationError) as error:
        session_create_schema.load(body)

    assert set(error.value.messages) == {"metadata"}


@FAST
@given(
    body=st.fixed_dictionaries(
        {}, optional={"display_name": optional_text(100), "description": optional_text(1000), "archived": st.booleans()}
    )
)
def test_session_patch_accepts_every_valid_change(body):
    assert session_patch_schema.load(body) == body


@FAST
@given(content=st.text(min_size=1, max_size=2000).filter(str.strip))
def test_message_content_with_any_visible_text_is_accepted(memory_app, content):
    with memory_app.app_context():
        assert message_create_schema.load({"content": content}) == {"content": content}


@FAST
@given(content=st.text(alphabet=" \t\r\n\u00a0\u2003", max_size=50))
def test_blank_message_content_is_refused_by_name(memory_app, content):
    with memory_app.app_context(), pytest.raises(ValidationError) as error:
        message_create_schema.load({"content": content})

    assert set(error.value.messages) == {"content"}


@FAST
@given(limit=st.integers(1, 200), offset=st.integers(0, 1_000_000), archived=st.booleans())
def test_list_query_parses_every_valid_query_string(limit, offset, archived):
    query = {"limit": str(limit), "offset": str(offset), "archived": str(archived).lower(), "utm": "x"}

    assert session_list_query_schema.load(query) == {"limit": limit, "offset": offset, "archived": archived}


@FAST
@given(limit=st.integers().filter(lambda n: not 1 <= n <= 500))
def test_messages_query_refuses_out_of_range_limits_by_name(limit):
    with pytest.raises(ValidationError) as error:
        messages_query_schema.load({"limit": str(limit)})

    assert set(error.value.messages) == {"limit"}


@FAST
@given(
    message=st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant"]),
            "content": st.text(max_size=200),
            "timestamp": st.datetimes().map(lambda d: d.isoformat() + "Z"),
            "metadata": metadata,
        }
    )
)
def test_message_dump_round_trips(message):
    schema = MessageSchema()
    assert schema.load(schema.dump(message)) == message


@FAST
@given(
    body=valid_create_bodies.filter(lambda body: body.get("persona") is None).map(
        lambda body: {**body, "persona": "mental_health_nurse"}
    )
)
def test_what_is_created_is_what_is_read_back(unlimited_app, body):
    client = unlimited_app.test_client()
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}

    created = client.post("/api/session/create", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    read = client.get(f"/api/sessions/{created.get_json()['session_id']}", headers=headers).get_json()

    for key, value in body.items():
        # An empty optional text is stored as absent, and reads back as null.
        expected = (value or None) if key in ("display_name", "description") else value
        assert read[key] == expected, key
