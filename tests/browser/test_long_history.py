"""A long conversation: the page shows its newest messages and loads older ones on demand."""

from __future__ import annotations

import redis
from playwright.sync_api import expect

from chatapp.storage import SessionStore, make_message
from tests.browser.chatpage import Visitor, log, send, sessions_button


def fill(redis_server, session_id: str, count: int) -> None:
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        store = SessionStore(client, 3600)
        for start in range(0, count, 100):
            store.append_messages(
                session_id, [make_message("user", f"m{i}") for i in range(start, min(start + 100, count))]
            )


def stored_session(page) -> str:
    """A first visit's session is stored by its first message; its id then."""
    send(page, "first words")
    return page.locator("body").get_attribute("data-session-id")


def test_the_page_shows_the_newest_messages_and_loads_older_ones_on_demand(visitor: Visitor, redis_server) -> None:
    page = visitor.open()
    session_id = stored_session(page)
    fill(redis_server, session_id, 248)  # 250 with the first message and its reply

    page.reload()

    messages = log(page).locator(".msg:not(.msg-greeting)")
    expect(messages).to_have_count(100)
    expect(messages.last).to_contain_text("m247")
    older = page.get_by_role("button", name="Show earlier messages")
    older.click()
    expect(messages).to_have_count(200)
    older.click()
    expect(messages).to_have_count(250)
    expect(messages.first).to_contain_text("first words")
    expect(log(page).locator(".msg").first).to_have_class("msg msg-assistant msg-greeting")
    expect(older).to_be_hidden()
    assert visitor.problems == []


def test_switching_to_a_long_session_offers_its_older_messages(visitor: Visitor, redis_server) -> None:
    page = visitor.open()
    long_id = stored_session(page)
    fill(redis_server, long_id, 298)
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_role("dialog", name="New session").get_by_role("button", name="Create Session").click()
    older = page.get_by_role("button", name="Show earlier messages")
    expect(older).to_be_hidden()

    sessions_button(page).click()
    page.locator(f'.session-item[data-session-id="{long_id}"]').click()

    expect(log(page).locator(".msg:not(.msg-greeting)")).to_have_count(200)
    older.click()
    expect(log(page).locator(".msg:not(.msg-greeting)")).to_have_count(300)
    expect(older).to_be_hidden()
    assert visitor.problems == []
