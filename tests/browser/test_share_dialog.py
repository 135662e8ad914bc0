"""Share links in the browser: share from the Share dialog, open the link in a fresh browser with
no cookie (and no JavaScript: the page is the server's), continue it as one's own, revoke it;
and share a session that is not the open one from its row in the Sessions manager."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.browser.chatpage import Visitor, create_session, log, manager, row, send

GONE = "This link does not work"


def test_share_open_continue_and_revoke(visitors: Callable[..., Visitor]) -> None:
    owner = visitors(permissions=["clipboard-read", "clipboard-write"])
    page = owner.open()
    send(page, "Plan a *short* trip to Lisbon", shown="Plan a short trip to Lisbon")  # rendered: <em>short</em>
    owner_id = page.locator("#user-id").inner_text()

    # Share: the dialog makes a snapshot link that works for a day, and copies it.
    page.get_by_role("button", name="Share", exact=True).click()
    dialog = page.get_by_role("dialog", name="Share this conversation")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("No active links for this session.")).to_be_visible()
    dialog.get_by_label("Link expires").select_option(label="In 1 day")
    dialog.get_by_role("radio", name=re.compile("Snapshot")).check()
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.get_by_label("New link")
    expect(link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/share/[0-9a-f][A-Za-z0-9_-]{32}$"))
    url = link.input_value()
    dialog.get_by_role("button", name="Copy link", exact=True).click()
    expect(dialog.get_by_text("Link copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    rows = dialog.get_by_role("list", name="Active links").get_by_role("listitem")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Snapshot")
    expect(rows.first).to_contain_text("0 views")
    expect(rows.first).to_contain_text("Expires")

    # A fresh browser, no cookie, no JavaScript: the conversation, rendered by the server.
    viewer = visitors(java_script_enabled=False)
    shared = viewer.open(url.removeprefix(viewer.base_url))
    expect(shared.get_by_role("heading", level=1)).to_contain_text("Default Assistant")
    messages = shared.locator(".share-messages .msg")
    expect(messages).to_have_count(2)
    expect(messages.first).to_contain_text("Plan a")
    expect(messages.first).to_contain_text("trip to Lisbon")
    expect(messages.first.locator("em")).to_have_text("short")  # the chat view's rendering
    expect(messages.last).to_contain_text("I'm offline")
    assert owner_id not in shared.content()

    # Continue: the viewer gets a session of its own, open in the app, with the same messages.
    shared.get_by_role("button", name="Continue this conversation").click()
    expect(shared).to_have_url(re.compile(r"/sessions/session_"))
    expect(log(shared).locator(".msg-user")).to_contain_text("trip to Lisbon")
    viewer_id = shared.locator("#user-id").inner_text()
    assert viewer_id and viewer_id != owner_id

    # The owner's dialog counts the view; Revoke ends the link at once.
    page.get_by_role("button", name="Close", exact=True).first.click()
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Share", exact=True).click()
    expect(rows.first).to_contain_text("1 view")
    rows.first.get_by_role("button", name="Revoke").click()
    expect(dialog.get_by_text("No active links for this session.")).to_be_visible()
    assert viewer.problems == []
    gone = viewer.open(url.removeprefix(viewer.base_url))
    expect(gone.get_by_role("heading", level=1)).to_contain_text("404")
    expect(gone.get_by_text(GONE)).to_be_visible()
    assert [problem for problem in viewer.problems if "404 (NOT FOUND)" not in problem] == []
    # The copy is the viewer's own, and stays.
    mine = viewer.open("/")
    expect(log(mine).locator(".msg-user")).to_contain_text("trip to Lisbon")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()  # closing a dialog: back to typing
    assert owner.problems == []


def test_hostile_markdown_on_the_shared_page_runs_nothing(visitors: Callable[..., Visitor]) -> None:
    owner = visitors()
    page = owner.open()
    for text, shown in (
        ("<script>window.pwned = 1</script>", None),
        ('<img src=x onerror="window.pwned = 1">', None),
        ("[click](javascript:window.pwned=1)", None),
        ("```\n</code></pre><script>window.pwned = 1</script>\n```", "</code></pre><script>window.pwned = 1</script>"),
    ):
        send(page, text, shown)  # (a code block shows its code)
    page.get_by_role("button", name="Share", exact=True).click()
    dialog = page.get_by_role("dialog", name="Share this conversation")
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.get_by_label("New link")
    expect(link).to_have_value(re.compile("/share/"))

    viewer = visitors()  # with JavaScript this time: nothing in the messages may run
    dialogs: list[str] = []
    viewer.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    shared = viewer.open(link.input_value().removeprefix(viewer.base_url))
    expect(shared.locator(".share-messages .msg-user")).to_have_count(4)
    expect(shared.locator(".share-messages .msg-user").first).to_contain_text("<script>window.pwned = 1</script>")
    for link_element in shared.locator(".share-messages a").all():
        link_element.click()  # a javascript: link would run here
    assert shared.evaluate("window.pwned") is None
    assert dialogs == []
    assert [p for p in viewer.problems if "img" not in p and "404" not in p] == []


def test_share_from_a_row_makes_the_link_for_that_session_not_the_open_one(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "Plan a trip to Lisbon")
    lisbon = page.locator("body").get_attribute("data-session-id")
    create_session(page, "Open one", "Creative Writer")
    open_one = page.locator("body").get_attribute("data-session-id")
    assert lisbon and open_one and open_one != lisbon
    dialog = manager(page)
    share_button = row(dialog, "Plan a trip to Lisbon").get_by_role("button", name="Share")

    share_button.click()
    share = page.get_by_role("dialog", name="Share “Plan a trip to Lisbon”")
    expect(share).to_be_visible()
    expect(share.get_by_label("Link expires")).to_be_focused()
    expect(share.get_by_text("No active links for this session.")).to_be_visible()
    share.get_by_role("button", name="Create link").click()
    link = share.get_by_label("New link")
    expect(link).to_have_value(re.compile("/share/"))
    url = link.input_value()
    expect(share.get_by_role("list", name="Active links").get_by_role("listitem")).to_have_count(1)

    # The API: the link is the row's session's, none is the open session's, and it shows Lisbon.
    def links_of(session_id: str) -> list[str]:
        answer = page.request.get(f"{visitor.base_url}/api/sessions/{session_id}/shares")
        assert answer.ok
        return [s["url"] for s in answer.json()["shares"]]

    assert links_of(lisbon) == [url]
    assert links_of(open_one) == []
    shared = page.request.get(f"{visitor.base_url}/api/share/{url.rsplit('/', 1)[1]}").json()
    assert [m["content"] for m in shared["messages"] if m["role"] == "user"] == ["Plan a trip to Lisbon"]

    # Escape closes the Share dialog only, back on the row's Share; the open session is unchanged.
    page.keyboard.press("Escape")
    expect(share).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(share_button).to_be_focused()
    expect(page.locator("body")).to_have_attribute("data-session-id", open_one)
    page.keyboard.press("Escape")
    # The header's Share is still for the open session.
    page.get_by_role("button", name="Share", exact=True).click()
    header_share = page.get_by_role("dialog", name="Share this conversation")
    expect(header_share.get_by_text("No active links for this session.")).to_be_visible()
    assert visitor.problems == []
