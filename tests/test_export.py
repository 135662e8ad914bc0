"""Export on the real redis-server: downloads named after titles, the JSON document, Markdown for
people (code blocks intact), a zip of Markdown files, and 100,000 messages streamed without
holding them."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import pytest

from chatapp.storage import get_store, make_message
from tests.transfer_helpers import export_json, post_import

CODE = "Try this:\n\n```python\ndef greet(name):\n    return f'Hello, {name}!'\n```\n\nThen run it."


@pytest.fixture
def chat(api) -> dict:
    session = api.create(user_id="Ada", persona="technical_support", display_name="Fix my code / please")
    api.send(session["session_id"], CODE)
    return session


def test_a_session_downloads_as_json_named_after_its_title(client, chat):
    response = client.get(f"/api/sessions/{chat['session_id']}/export")

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Fix my code-please.json"'
    document = json.loads(response.get_data())
    assert (document["format"], document["version"]) == ("chatapp.export", 1) and document["exported_at"]
    (session,) = document["sessions"]
    assert session["session_id"] == chat["session_id"] and session["display_name"] == "Fix my code / please"
    assert session["message_count"] == 2 and [m["role"] for m in session["messages"]] == ["user", "assistant"]
    assert session["messages"][0]["content"] == CODE


def test_a_session_downloads_as_markdown_for_people(client, chat):
    response = client.get(f"/api/sessions/{chat['session_id']}/export", query_string={"format": "markdown"})

    assert response.status_code == 200 and response.mimetype == "text/markdown"
    assert response.headers["Content-Disposition"] == 'attachment; filename="Fix my code-please.md"'
    text = response.get_data(as_text=True)
    assert text.startswith("# Fix my code / please\n")
    assert "- Persona: Technical Support (`technical_support`)" in text
    assert "- Created: " in text and "- Last activity: " in text
    assert "### User · " in text and "### Technical Support · " in text
    assert CODE in text  # the code block exactly as written


def test_a_unicode_title_gets_an_ascii_fallback_and_the_real_name(client, api):
    session = api.create(user_id="Ada", display_name="Grüße aus Köln 🇩🇪")

    response = client.get(f"/api/sessions/{session['session_id']}/export")

    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        "attachment; filename=\"Grue aus Koln.json\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln.json"
    )


def test_a_selection_exports_in_the_order_asked_and_markdown_as_a_zip(client, api):
    first = api.create(user_id="Ada", display_name="Same name")
    second = api.create(user_id="Ada", display_name="Same name")
    third = api.create(user_id="Ada", display_name="Other: name?")
    api.send(third["session_id"], CODE)
    ids = [third["session_id"], first["session_id"], second["session_id"]]

    document = export_json(client, session_ids=ids)
    response = client.post("/api/export", json={"session_ids": ids, "format": "markdown"})

    assert [s["session_id"] for s in document["sessions"]] == ids
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.namelist() == ["Other-name.md", "Same name.md", "Same name (2).md"]
    assert CODE in archive.read("Other-name.md").decode()


def test_everything_of_a_user_and_an_unknown_id(client, api):
    live = api.create(user_id="Ada")
    kept = api.create(user_id="Ada")
    client.patch(f"/api/sessions/{kept['session_id']}", json={"archived": True})
    api.create(user_id="Bob")

    document = export_json(client, user_id="Ada")
    missing = client.post("/api/export", json={"session_ids": [live["session_id"], "session_nobody_1_0000000000ab"]})

    assert [s["session_id"] for s in document["sessions"]] == [live["session_id"], kept["session_id"]]
    assert missing.status_code == 404 and "session_nobody" in missing.get_json()["error"]["message"]


def test_100000_messages_stream_without_being_held(app, client):
    with app.app_context():
        store = get_store()
        session = store.create_session("Long talker", "default")
        for start in range(0, 100_000, 2000):
            batch = [
                make_message("user", f"Message {i}: a sentence or two of a long talk.")
                for i in range(start, start + 2000)
            ]
            store.append_messages(session["session_id"], batch, announced=False)

    response = client.get(f"/api/sessions/{session['session_id']}/export")
    assert response.is_streamed
    tracemalloc.start()
    size = 0
    try:
        for chunk in response.response:
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        response.close()

    assert size > 10_000_000
    assert peak < size / 10, f"peak {peak:,} B while streaming {size:,} B"


def test_a_roundtrip_through_markdown_is_not_promised_but_json_is(client, chat):
    document = export_json(client, session_ids=[chat["session_id"]])

    answer = post_import(client, json.dumps(document).encode(), user_id="Ada").get_json()

    again = export_json(client, session_ids=[answer["sessions"][0]["session_id"]])
    assert again["sessions"][0]["messages"] == document["sessions"][0]["messages"]
    assert again["sessions"][0]["created_at"] == document["sessions"][0]["created_at"]
