"""Input the JSON parser, Redis or a terminal would choke on gets a 4xx in the error envelope.

Python's json accepts NaN and Infinity, recurses once per nesting level and decodes "\\udc00" into
a lone surrogate redis-py cannot encode: each of those was a 500 or a stored value that broke
every listing holding it. Names and descriptions refuse control characters.
"""

from __future__ import annotations

import json

import pytest

from chatapp.api import strict_json
from tests.helpers import Visitor


def no_constants(name: str):
    raise AssertionError(f"{name} in a JSON answer")


def strict_loads(text: str):
    return json.loads(text, parse_constant=no_constants)


@pytest.fixture
def existing(api):
    session = api.create(display_name="Original")
    api.send(session["session_id"], "keep me")
    return session["session_id"]


def everything(client) -> list:
    """Every session and message an operator can read, as the API answers them (strictly parsed)."""
    listed = []
    for archived in ("false", "true"):
        answer = client.get("/api/sessions", query_string={"archived": archived, "limit": 200})
        listed += strict_loads(answer.get_data(as_text=True))["sessions"]
    histories = [
        strict_loads(client.get(f"/api/session/{s['session_id']}/history").get_data(as_text=True)) for s in listed
    ]
    return [listed, histories]


DEEP = "[" * 1000 + "]" * 1000
BAD_BODIES = {
    "NaN in metadata": '{"metadata": {"a": NaN}}',
    "-Infinity in metadata": '{"metadata": {"a": -Infinity}}',
    "Infinity at the top": '{"user_id": "a", "x": Infinity}',
    "1e400 overflows": '{"metadata": {"a": 1e400}}',
    "nested 1000 deep": '{"metadata": {"a": ' + DEEP + "}}",
    "nested 33 deep": '{"metadata": ' + "[" * 32 + "]" * 32 + "}",
    "lone surrogate in user_id": '{"user_id": "\\udc00"}',
    "lone high surrogate in display_name": '{"display_name": "a\\ud800b"}',
    "lone surrogate in a metadata key": '{"metadata": {"\\udfff": 1}}',
    "lone surrogate deep in metadata": '{"metadata": {"a": [{"b": ["\\ud83d"]}]}}',
    "duplicate keys": '{"user_id": "a", "user_id": "b"}',
    "a 5000-digit number": '{"metadata": {"a": ' + "9" * 5000 + "}}",
    "UTF-8 encoded surrogate": b'{"user_id": "\xed\xb3\x80"}',
    "UTF-16": '{"user_id": "a"}'.encode("utf-16"),
    "Latin-1": b'{"user_id": "caf\xe9"}',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_create_refuses_what_strict_json_refuses_with_400(client, existing, body):
    before = everything(client)

    response = client.post("/api/session/create", data=body, content_type="application/json")

    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == 400 and error["message"]
    assert everything(client) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/sessions/{sid}/messages", '{"content": "\\udc00"}'),
        ("/api/sessions/{sid}/messages", '{"content": NaN}'),
        ("/api/sessions/{sid}", '{"display_name": "\\ud800"}'),
        ("/api/sessions/{sid}", '{"archived": ' + DEEP + "}"),
    ],
)
def test_every_body_is_parsed_strictly(client, existing, path, body):
    before = everything(client)
    method = "PATCH" if path == "/api/sessions/{sid}" else "POST"

    response = client.open(path.format(sid=existing), method=method, data=body, content_type="application/json")

    assert response.status_code == 400 and response.get_json()["error"]["code"] == 400
    assert everything(client) == before


def test_a_surrogate_pair_is_one_character_and_welcome(client):
    response = client.post(
        "/api/session/create", data='{"user_id": "\\ud83d\\ude00 smile"}', content_type="application/json"
    )

    assert response.status_code == 201 and response.get_json()["user_id"] == "\U0001f600 smile"


def test_the_depth_scan_ignores_brackets_inside_strings():
    assert strict_json.nesting_depth('{"a": "[[[[{{{{", "b": ["]"]}') == 2
    assert strict_json.loads(b'{"a": "' + b"[" * 100 + b'"}') == {"a": "[" * 100}


CONTROL = ["\x00", "\x07", "\x1b[2J", "\r", "\x0b", "\x7f", "\x9b"]


@pytest.mark.parametrize("field", ["display_name", "description"])
@pytest.mark.parametrize("char", CONTROL, ids=repr)
def test_names_and_descriptions_refuse_control_characters(client, existing, field, char):
    before = everything(client)

    created = client.post("/api/session/create", json={field: f"x{char}y"})
    patched = client.patch(f"/api/sessions/{existing}", json={field: f"x{char}y"})

    for response in (created, patched):
        assert response.status_code == 422
        assert "control characters" in response.get_json()["error"]["fields"][field][0]
    assert everything(client) == before


def test_newline_and_tab_are_allowed_in_names(api):
    session = api.create(display_name="two\tcolumns", description="line one\nline two")

    assert session["display_name"] == "two\tcolumns" and session["description"] == "line one\nline two"


def test_the_new_session_form_refuses_control_characters_too(app):
    visitor = Visitor(app)

    response = visitor.request(
        "POST", "/sessions", data={"display_name": "\x1b[2Jfake", "persona": "default"}, headers={"Accept": "text/html"}
    )

    assert response.status_code == 422
    assert "control characters" in response.get_data(as_text=True)


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def test_metadata_may_nest_8_deep_and_no_deeper(client, existing):
    before = everything(client)

    fits = client.post("/api/session/create", json={"metadata": nested(8)})
    too_deep = client.post("/api/session/create", json={"metadata": nested(9)})

    assert fits.status_code == 201
    assert too_deep.status_code == 422 and "8 deep" in too_deep.get_json()["error"]["fields"]["metadata"][0]
    assert len(everything(client)[0]) == len(before[0]) + 1


@pytest.mark.parametrize("value", [0, 1, "true", "false", None, [], {}])
def test_archived_is_a_json_boolean_and_nothing_else(client, existing, value):
    before = everything(client)

    response = client.patch(f"/api/sessions/{existing}", json={"archived": value})

    assert response.status_code == 422 and "archived" in response.get_json()["error"]["fields"]
    assert everything(client) == before


@pytest.mark.parametrize("value", ["1", "0", "yes", "True", "on", ""])
def test_the_archived_filter_is_true_or_false(client, value):
    response = client.get("/api/sessions", query_string={"archived": value})

    assert response.status_code == 422 and "archived" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/sessions?user_id=%ED%B3%80",
        "/api/sessions?persona=%ff%fe&user_id=%00",
        "/api/sessions?limit=%ED%A0%80",
        "/api/session/%ED%B3%80/history",
        "/api/session/%ff/clear",
        "/api/sessions/%ED%B3%80",
        "/api/sessions/session_%C0%AF/messages?before=%ff",
        "/?session=%ED%B3%80",
        "/health?%ff=%fe",
    ],
)
def test_undecodable_query_strings_and_path_segments_are_no_500(client, existing, path):
    before = everything(client)
    method = "DELETE" if path.endswith("/clear") else "GET"

    response = client.open(path, method=method)

    assert response.status_code < 500
    if path.startswith("/api/"):
        assert response.is_json and (response.status_code == 200 or response.get_json()["error"])
    assert everything(client) == before
