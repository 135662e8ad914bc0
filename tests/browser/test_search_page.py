"""Issue 16 in a browser: Ctrl+K, two words, the snippet with its hits marked, and the
conversation opened at that message."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.chatpage import Visitor, create_session, log, send
from tests.browser.conftest import serve_app
from tests.servers import AppServer, RedisServer


@pytest.fixture(scope="module", params=["redis_server", "redis_stack"], ids=["built-in", "redis-query-engine"])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """These tests on each engine: the app on Debian's redis-server, then on a Redis Stack server."""
    server: RedisServer = request.getfixturevalue(request.param)
    with serve_app(server, tmp_path_factory) as app:
        yield app


def test_ctrl_k_finds_two_words_and_opens_the_conversation_at_that_message(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "Where did the purple elephant go after the parade?")
    for n in range(8):  # enough after it that it is out of view at the end of the log
        send(page, f"Filler message number {n} about nothing much at all, to scroll the page.")
    create_session(page, "Another chat", "Default Assistant")
    send(page, "A purple hat, and nothing more")

    page.keyboard.press("Control+k")
    dialog = page.get_by_role("dialog", name="Search your conversations")
    expect(dialog).to_be_visible()
    page.keyboard.type("elephant purple")

    snippet = dialog.locator(".search-snippet")
    expect(snippet).to_have_count(1)
    expect(snippet).to_contain_text("Where did the purple elephant go after the parade?")
    expect(snippet.locator("mark")).to_have_text(["purple", "elephant"])
    expect(dialog.get_by_role("status")).to_have_text("1 conversation found.")
    snippet.click()

    expect(dialog).to_be_hidden()
    found = log(page).locator(".msg-found")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Where did the purple elephant go after the parade?")
    expect(found).to_be_in_viewport()
    expect(page.locator("#session-name")).to_have_text(
        "Where did the purple elephant go after the parade?"
    )  # its title
    expect(found).to_have_count(0, timeout=6000)  # marked briefly
    assert visitor.problems == []


def test_the_search_button_opens_it_and_a_bad_query_says_why(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "hello there")

    page.get_by_role("button", name="Search", exact=True).click()
    dialog = page.get_by_role("dialog", name="Search your conversations")
    dialog.get_by_label("Search words").fill('"unclosed')

    expect(dialog.get_by_role("status")).to_have_text(re.compile("pairs of"))
    assert visitor.problems == [
        "console error: Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    ]


def test_the_sessions_search_field_leads_on_to_the_messages(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "Notes on the quiet heron by the pond")
    create_session(page, "Another chat", "Default Assistant")

    page.get_by_role("button", name="Sessions", exact=True).click()
    sessions = page.get_by_role("dialog", name="Your sessions")
    sessions.get_by_label("Search sessions").fill("heron pond")
    sessions.get_by_role("button", name="Search messages").click()

    dialog = page.get_by_role("dialog", name="Search your conversations")
    expect(sessions).to_be_hidden()
    expect(dialog.get_by_label("Search words")).to_have_value("heron pond")
    expect(dialog.locator(".search-snippet mark")).to_have_text(["heron", "pond"])
    assert visitor.problems == []
