"""Issue 12: the Sessions modal as a manager, and an address for every session, in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

import redis
from playwright.sync_api import Locator, Page, expect

from chatapp.storage import SessionStore, make_message
from tests.browser.chatpage import Visitor, create_session, log, manager, row, send
from tests.servers import RedisServer

UNDO_WAIT = 10_000  # ms: Undo is offered for 6 s, then the delete is sent


def stored(redis_server: RedisServer, user_id: str, count: int, **fields: str) -> list[str]:
    """`count` sessions of the visitor straight in the store (as many requests would make them)."""
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        store = SessionStore(client, 3600)
        return [
            store.create_session(user_id=user_id, persona="default", **{k: v.format(i=i) for k, v in fields.items()})[
                "session_id"
            ]
            for i in range(count)
        ]


def first_message(redis_server: RedisServer, session_id: str, text: str) -> None:
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        SessionStore(client, 3600).append_messages(session_id, [make_message("user", text)])


def names(dialog: Locator) -> list[str]:
    return dialog.locator(".session-name").all_inner_texts()


def api_session(page: Page, base_url: str, session_id: str) -> tuple[int, dict]:
    response = page.request.get(f"{base_url}/api/sessions/{session_id}")
    return response.status, response.json() if response.ok else {}


def session_id(page: Page) -> str:
    value = page.locator("body").get_attribute("data-session-id")
    assert value
    return value


def test_rename_and_describe_from_the_row_with_the_limit_shown(visitor: Visitor) -> None:
    page = visitor.open()
    create_session(page, "Old name", "Creative Writer")
    dialog = manager(page)
    row(dialog, "Old name").get_by_role("button", name="Rename").click()
    edit = page.get_by_role("dialog", name="Rename session")
    expect(edit.get_by_label("Name")).to_have_value("Old name")
    edit.get_by_label("Name").fill("x" * 105)  # over the limit: said, not cut
    expect(edit.get_by_label("Name")).to_have_value("x" * 105)
    expect(edit).to_contain_text("5 over the limit of 100 characters")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_be_visible()
    edit.get_by_label("Name").fill("Sea stories")
    expect(edit).to_contain_text("11 / 100")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_be_hidden()
    expect(row(dialog, "Sea stories")).to_have_count(1)
    expect(page.locator("#session-name")).to_have_text("Sea stories")
    expect(page).to_have_title("Sea stories · chatapp")

    row(dialog, "Sea stories").get_by_role("button", name="Describe").click()
    edit = page.get_by_role("dialog", name="Describe session")
    edit.get_by_label("Description").fill("Pirates, storms and <b>treasure</b>")
    edit.get_by_role("button", name="Save").click()
    expect(row(dialog, "Sea stories").locator(".session-description")).to_have_text(
        "Pirates, storms and <b>treasure</b>"
    )
    status, detail = api_session(page, visitor.base_url, session_id(page))
    assert status == 200 and detail["display_name"] == "Sea stories"
    assert detail["description"] == "Pirates, storms and <b>treasure</b>"
    assert dialog.locator("b").count() == 0
    assert visitor.problems == []


def test_pin_keeps_it_lists_it_first_and_keep_in_the_header_pins_the_open_one(visitor: Visitor) -> None:
    page = visitor.open()
    create_session(page, "First", "Default Assistant")
    first = session_id(page)
    create_session(page, "Second", "Default Assistant")
    expect(page.locator("#session-keep")).to_contain_text(re.compile(r"Expires in (59 min|1 h)"))
    dialog = manager(page)
    expect(dialog.locator(".session-name")).to_have_text(["Second", "First", "New chat"])
    expect(row(dialog, "First")).to_contain_text("Expires in")

    row(dialog, "First").get_by_role("button", name="Pin").click()

    expect(dialog.locator(".session-name")).to_have_text(["First", "Second", "New chat"])
    expect(dialog.locator(".session-group-label").first).to_have_text("Pinned")
    expect(row(dialog, "First")).to_contain_text("Kept (pinned)")
    expect(row(dialog, "First")).not_to_contain_text("Expires")
    expect(row(dialog, "First").get_by_role("button", name="Unpin")).to_be_visible()
    expect(dialog.get_by_role("status").filter(has_text="Pinned “First”.")).to_be_visible()
    assert api_session(page, visitor.base_url, first)[1]["expires_at"] is None
    # Undo unpins it, and pinning again keeps it
    dialog.get_by_role("button", name="Undo").click()
    expect(row(dialog, "First")).to_contain_text("Expires in")
    assert api_session(page, visitor.base_url, first)[1]["pinned"] is False
    row(dialog, "First").get_by_role("button", name="Pin").click()
    expect(row(dialog, "First")).to_contain_text("Kept (pinned)")
    page.keyboard.press("Escape")

    # the open one ("Second"): one click on Keep in the chat's header
    page.get_by_role("button", name="Keep").click()
    expect(page.locator("#session-keep")).to_contain_text("Pinned: kept until you unpin it.")
    assert api_session(page, visitor.base_url, session_id(page))[1]["expires_at"] is None
    dialog = manager(page)
    expect(dialog.locator(".session-group-label").first).to_have_text("Pinned")
    expect(dialog.locator(".is-pinned .session-name")).to_have_text(["Second", "First"])
    assert visitor.problems == []


def test_archive_moves_it_out_to_archived_the_open_one_stays_open_and_unarchive_brings_it_back(
    visitor: Visitor,
) -> None:
    page = visitor.open()
    create_session(page, "Diary", "Mental Health Nurse")
    send(page, "dear diary")
    dialog = manager(page)
    row(dialog, "Diary").get_by_role("button", name="Archive").click()

    expect(row(dialog, "Diary")).to_have_count(0)
    expect(dialog.get_by_role("status").filter(has_text="Archived “Diary”.")).to_be_visible()
    dialog.get_by_label("Archived").check()
    expect(row(dialog, "Diary")).to_contain_text("Kept (archived)")
    page.keyboard.press("Escape")
    # the open session stays open, says so, and still takes messages
    expect(page.locator("#session-name")).to_have_text("Diary")
    expect(page.locator("#session-keep")).to_contain_text("Archived: kept, and out of your list.")
    expect(log(page)).to_contain_text("dear diary")
    send(page, "still writing")

    dialog = manager(page)
    expect(dialog.get_by_label("Archived")).to_be_checked()  # the view it was left in
    row(dialog, "Diary").get_by_role("button", name="Unarchive").click()
    expect(row(dialog, "Diary")).to_have_count(0)
    dialog.get_by_label("Chats").check()
    expect(row(dialog, "Diary")).to_contain_text("Expires in")
    page.keyboard.press("Escape")
    expect(page.locator("#session-keep")).to_contain_text("Expires in")
    assert visitor.problems == []


def test_delete_asks_first_can_be_undone_and_otherwise_deletes(visitor: Visitor) -> None:
    page = visitor.open()
    create_session(page, "Keep me", "Default Assistant")
    keep = session_id(page)
    create_session(page, "Drop me", "Default Assistant")
    drop = session_id(page)
    dialog = manager(page)

    row(dialog, "Keep me").get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("alertdialog", name="Delete “Keep me”?")
    expect(confirm).to_contain_text("Its messages are deleted with it.")
    confirm.get_by_role("button", name="Cancel").click()
    expect(row(dialog, "Keep me")).to_have_count(1)
    row(dialog, "Keep me").get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(row(dialog, "Keep me")).to_have_count(0)
    dialog.get_by_role("button", name="Undo").click()
    expect(row(dialog, "Keep me")).to_have_count(1)

    row(dialog, "Drop me").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog", name="Delete “Drop me”?").get_by_role("button", name="Delete").click()
    expect(row(dialog, "Drop me")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Undo")).to_be_hidden(timeout=UNDO_WAIT)
    # the open session was the one deleted: the chat says so
    expect(page.get_by_role("alert").filter(has_text="This session was deleted")).to_be_visible()
    assert api_session(page, visitor.base_url, drop)[0] == 404
    assert api_session(page, visitor.base_url, keep)[0] == 200
    page.reload()  # its address now says it is not found; the app's own address shows the others
    expect(page.get_by_role("heading", name="Session not found")).to_be_visible()
    visitor.open("/")
    dialog = manager(page)
    expect(row(dialog, "Keep me")).to_have_count(1)
    expect(row(dialog, "Drop me")).to_have_count(0)
    assert [p for p in visitor.problems if "404 (NOT FOUND)" not in p] == []


def test_an_unnamed_session_is_titled_by_its_first_message(visitor: Visitor) -> None:
    page = visitor.open()
    expect(page).to_have_title("New chat · chatapp")
    send(page, "Plan a long weekend in Lisbon for two people who love old trams and custard tarts")
    title = "Plan a long weekend in Lisbon for two people who love old…"
    expect(page.locator("#session-name")).to_have_text(title)
    expect(page).to_have_title(f"{title} · chatapp")
    send(page, "and something else later")
    dialog = manager(page)
    expect(dialog.locator('[aria-current="true"] .session-name')).to_have_text(title)
    assert page.locator("#user-id").inner_text() not in dialog.inner_text()
    assert visitor.problems == []


def test_search_finds_sessions_by_title_and_by_description(visitor: Visitor, redis_server: RedisServer) -> None:
    page = visitor.open()
    user = page.locator("#user-id").inner_text()
    stored(redis_server, user, 3, display_name="Filler {i}")
    [by_title] = stored(redis_server, user, 1)
    first_message(redis_server, by_title, "Which tram goes up to the castle in Lisbon?")
    stored(redis_server, user, 1, display_name="Money", description="The yearly BUDGET, line by line")
    dialog = manager(page)
    search = dialog.get_by_role("searchbox", name="Search sessions")

    search.fill("lisbon")
    expect(dialog.locator(".session-name")).to_have_text(["Which tram goes up to the castle in Lisbon?"])
    expect(dialog).to_contain_text("Showing 1 of 1 matching “lisbon”")
    search.fill("budget")
    expect(dialog.locator(".session-name")).to_have_text(["Money"])
    search.fill("no such words")
    expect(dialog).to_contain_text("No sessions match “no such words”.")
    expect(dialog.locator(".session-row")).to_have_count(0)
    search.fill("")
    expect(dialog.locator(".session-row")).to_have_count(6)  # and the visitor's own first one
    assert visitor.problems == []


def test_150_sessions_are_all_reachable_with_load_more_and_the_count_is_shown(
    visitor: Visitor, redis_server: RedisServer
) -> None:
    page = visitor.open()
    stored(redis_server, page.locator("#user-id").inner_text(), 150, display_name="Chat number {i}")
    dialog = manager(page)
    total = 151  # and the visitor's first session, stored when the list opens
    expect(dialog.get_by_role("status").filter(has_text="Showing")).to_have_text(f"Showing 50 of {total}")
    more = dialog.get_by_role("button", name=re.compile(r"^Load more"))
    expect(more).to_have_text("Load more (101 more)")
    for shown in (100, 150, total):
        more.click()
        expect(dialog.locator(".session-row")).to_have_count(shown)
    expect(more).to_be_hidden()
    expect(dialog).to_contain_text(f"Showing {total} of {total}")
    oldest = row(dialog, "Chat number 0")
    oldest.scroll_into_view_if_needed()
    expect(oldest).to_be_in_viewport()
    expect(dialog.get_by_role("button", name="Close")).to_be_in_viewport()
    assert len(set(names(dialog))) == total
    assert visitor.problems == []


def test_bulk_archive_then_bulk_delete_three_selected(visitor: Visitor, redis_server: RedisServer) -> None:
    page = visitor.open()
    ids = stored(redis_server, page.locator("#user-id").inner_text(), 5, display_name="Batch {i}")
    dialog = manager(page)
    dialog.get_by_role("button", name="Select").click()
    expect(dialog.get_by_role("button", name="Select")).to_have_attribute("aria-pressed", "true")
    bar = dialog.get_by_role("toolbar", name="Selected sessions")
    for i in (1, 2, 4):
        dialog.get_by_label(f"Select Batch {i}").check()
    expect(bar).to_contain_text("3 selected")

    bar.get_by_role("button", name="Archive").click()

    expect(dialog.get_by_role("status").filter(has_text="Archived 3 sessions.")).to_be_visible()
    expect(dialog.locator(".session-name")).to_have_text(["New chat", "Batch 3", "Batch 0"])
    dialog.get_by_label("Archived").check()
    # (the Chats view also shows 3 rows: wait for archived ones, not for a count both views have)
    expect(dialog.locator(".session-row.is-archived")).to_have_count(3)
    assert sorted(names(dialog)) == ["Batch 1", "Batch 2", "Batch 4"]
    bar.get_by_label("Select all shown").check()
    expect(bar).to_contain_text("3 selected")
    bar.get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog", name="Delete 3 sessions?").get_by_role("button", name="Delete").click()
    expect(dialog.locator(".session-row")).to_have_count(0)
    page.keyboard.press("Escape")  # closing the list sends the delete at once (Undo is no longer offered)
    expect(dialog).to_be_hidden()

    page.wait_for_function(
        "async (url) => (await (await fetch(url)).json()).count === 0",
        arg=f"{visitor.base_url}/api/sessions?archived=true",
        timeout=UNDO_WAIT,
    )
    assert [api_session(page, visitor.base_url, ids[i])[0] for i in range(5)] == [200, 404, 404, 200, 404]
    assert [p for p in visitor.problems if "404 (NOT FOUND)" not in p] == []


def test_switching_changes_the_address_and_back_and_forward_switch_back(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "words in the first")
    first = session_id(page)
    expect(page).to_have_url(f"{visitor.base_url}/sessions/{first}")
    create_session(page, "Second one", "Creative Writer")
    second = session_id(page)
    expect(page).to_have_url(f"{visitor.base_url}/sessions/{second}")
    dialog = manager(page)
    dialog.locator(f'.session-item[data-session-id="{first}"]').click()
    expect(page).to_have_url(f"{visitor.base_url}/sessions/{first}")
    expect(page).to_have_title("words in the first · chatapp")

    page.go_back()

    expect(page).to_have_url(f"{visitor.base_url}/sessions/{second}")
    expect(page.locator("#session-name")).to_have_text("Second one")
    expect(page).to_have_title("Second one · chatapp")
    expect(log(page)).not_to_contain_text("words in the first")
    page.go_forward()
    expect(page.locator("#session-name")).to_have_text("words in the first")
    expect(log(page)).to_contain_text("words in the first")
    assert visitor.problems == []


def test_a_sessions_address_opens_it_after_a_fresh_load(visitors: Callable[..., Visitor]) -> None:
    visitor = visitors()
    page = visitor.open()
    create_session(page, "Linked", "Technical Support")
    send(page, "the linked words")
    linked = session_id(page)
    create_session(page, "Another", "Default Assistant")

    tab = visitor.new_tab()
    visitor.open(f"/sessions/{linked}", tab)

    expect(tab.locator("#session-name")).to_have_text("Linked")
    expect(tab).to_have_title("Linked · chatapp")
    expect(log(tab)).to_contain_text("the linked words")
    expect(tab.locator("#session-persona")).to_have_text("Technical Support")
    expect(tab).to_have_url(f"{visitor.base_url}/sessions/{linked}")
    assert visitor.problems == []


def test_on_a_phone_the_close_button_stays_in_view_with_150_sessions_and_the_backdrop_closes(
    visitors: Callable[..., Visitor], redis_server: RedisServer
) -> None:
    visitor = visitors(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = visitor.open()
    stored(redis_server, page.locator("#user-id").inner_text(), 150, display_name="Phone chat {i}")
    dialog = manager(page)
    close = dialog.get_by_role("button", name="Close")
    box = dialog.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] <= 844
    more = dialog.get_by_role("button", name=re.compile(r"^Load more"))
    for shown in (100, 150, 151):
        more.click()
        expect(dialog.locator(".session-row")).to_have_count(shown)
    row(dialog, "Phone chat 0").scroll_into_view_if_needed()
    expect(close).to_be_in_viewport()
    expect(dialog.get_by_role("heading", name="Your sessions")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for target in (
        close,
        row(dialog, "Phone chat 0").get_by_role("button", name="Delete"),
        dialog.locator(".views label").filter(has_text="Archived"),
    ):
        size = target.bounding_box()
        assert size and size["height"] >= 44 and size["width"] >= 20, target
    close_box = close.bounding_box()
    assert close_box and close_box["width"] >= 44 and close_box["height"] >= 44

    page.mouse.click(195, 2)  # the backdrop above the modal

    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="New", exact=True).click()
    new = page.get_by_role("dialog", name="New session")
    expect(new.get_by_role("button", name="Close")).to_be_in_viewport()
    new.get_by_role("button", name="Close").click()
    expect(new).to_be_hidden()
    assert visitor.problems == []
