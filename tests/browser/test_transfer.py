"""Export and import in the browser: a session downloads as Markdown and as JSON, the JSON imports
back through the Sessions dialog, and the imported session is listed and opens with its messages."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.chatpage import Visitor, create_session, log, send, sessions_button

CODE = "Show me code:\n```python\nprint('grüße')\n```"


def test_export_a_session_as_markdown_and_json_then_import_the_json(visitor: Visitor, tmp_path: Path) -> None:
    page = visitor.open()
    create_session(page, "Recipes 🍲", "Creative Writer")
    send(page, "Soup for two?")
    page.get_by_label("Message", exact=True).fill(CODE)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log(page).locator(".msg-assistant")).to_have_count(3)  # the greeting and two replies
    exports = page.locator("#export-links")

    with page.expect_download() as markdown_download:
        exports.get_by_role("link", name="Markdown").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename == "Recipes.md"
    text = Path(markdown.path()).read_text(encoding="utf-8")
    assert text.startswith("# Recipes 🍲\n") and "Creative Writer" in text and CODE in text

    with page.expect_download() as json_download:
        exports.get_by_role("link", name="JSON").click()
    saved = tmp_path / "recipes.json"
    json_download.value.save_as(saved)
    document = json.loads(saved.read_text(encoding="utf-8"))
    (session,) = document["sessions"]
    assert session["display_name"] == "Recipes 🍲"
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == ["Soup for two?", CODE]

    sessions_button(page).click()
    dialog = page.get_by_role("dialog", name="Your sessions")
    dialog.get_by_label("File to import").set_input_files(saved)
    dialog.get_by_role("button", name="Import", exact=True).click()
    expect(dialog.get_by_role("status").filter(has_text="Imported")).to_have_text("Imported 1 session.")

    row = dialog.locator(".session-item", has_text="Kept (archived)")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Recipes 🍲")
    expect(row).to_contain_text("4 messages")
    imported_id = row.get_attribute("data-session-id")
    assert imported_id and imported_id != session["session_id"]
    row.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-session-id", imported_id)
    expect(log(page).locator(".msg-user")).to_have_count(2)
    expect(log(page).locator(".msg-user").last).to_contain_text("print('grüße')")
    expect(page.locator("#session-name")).to_have_text("Recipes 🍲")
    assert visitor.problems == []
