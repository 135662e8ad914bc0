"""Export and import in the browser: a session downloads as Markdown and as JSON, the JSON imports
back through the Sessions dialog, and the imported session is listed and opens with its messages;
from the Sessions manager a row exports its own session, and Select mode exports those selected."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.chatpage import Visitor, create_session, log, manager, row, send, sessions_button

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


def test_a_rows_export_downloads_that_session_not_the_open_one_as_json_and_markdown(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "Soup for two?")
    create_session(page, "Something else", "Creative Writer")  # the open session is another one
    dialog = manager(page)
    soup = row(dialog, "Soup for two?")
    soup_id = soup.locator(".session-item").get_attribute("data-session-id")
    export = soup.get_by_role("group", name="Actions for Soup for two?").get_by_title("Export")  # a <summary>
    expect(soup.get_by_role("link", name="JSON")).to_be_hidden()

    # From the keyboard: the disclosure opens with Enter, Tab reaches its first link.
    export.focus()
    page.keyboard.press("Enter")
    expect(soup.get_by_role("link", name="JSON")).to_be_visible()
    page.keyboard.press("Tab")
    expect(soup.get_by_role("link", name="JSON")).to_be_focused()
    with page.expect_download() as json_download:
        page.keyboard.press("Enter")
    document = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert document["format"] == "chatapp.export"
    (session,) = document["sessions"]
    assert session["session_id"] == soup_id and session["title"] == "Soup for two?"
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == ["Soup for two?"]
    expect(soup.get_by_role("link", name="JSON")).to_be_hidden()  # choosing closes the menu

    export.click()
    with page.expect_download() as markdown_download:
        soup.get_by_role("link", name="Markdown").click()
    assert markdown_download.value.suggested_filename == "Soup for two.md"
    markdown = Path(markdown_download.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Soup for two?\n") and "Default Assistant" in markdown
    assert "Something else" not in markdown
    expect(dialog).to_be_visible()  # a download leaves the page and the manager as they were
    expect(page.locator("#session-name")).to_have_text("Something else")
    assert visitor.problems == []


def test_select_two_sessions_and_export_them_as_one_json_document_or_a_zip_of_markdown(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "First words")
    create_session(page, "Second", "Creative Writer")
    send(page, "Second words")
    create_session(page, "Left out", "Default Assistant")
    send(page, "Third words")
    dialog = manager(page)
    dialog.get_by_role("button", name="Select").click()
    bar = dialog.get_by_role("toolbar", name="Selected sessions")
    export_json = bar.get_by_role("button", name="Export JSON")
    expect(export_json).to_be_disabled()  # nothing selected yet
    dialog.get_by_label("Select First words").check()
    dialog.get_by_label("Select Second").check()
    expect(bar).to_contain_text("2 selected")

    with page.expect_download() as json_download:
        export_json.click()
    expect(dialog.get_by_role("status").filter(has_text="Exported")).to_have_text("Exported 2 sessions.")
    assert json_download.value.suggested_filename == "chatapp.json"
    document = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    sessions = {s["title"]: [m["content"] for m in s["messages"] if m["role"] == "user"] for s in document["sessions"]}
    assert sessions == {"Second words": ["Second words"], "First words": ["First words"]}
    assert [s["display_name"] for s in document["sessions"]] == ["Second", None]  # in the order shown

    with page.expect_download() as zip_download:
        bar.get_by_role("button", name="Export Markdown (zip)").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(zip_download.value.path()).read_bytes()))
    texts = [archive.read(name).decode("utf-8") for name in archive.namelist()]
    assert len(texts) == 2 and all(name.endswith(".md") for name in archive.namelist())
    assert any("Second words" in text for text in texts) and any("First words" in text for text in texts)
    assert not any("Third words" in text for text in texts)
    assert visitor.problems == []
