"""The feature guide's User Workflow, step by step as written there, in headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.chatpage import (
    DEFAULT_GREETING,
    NURSE_GREETING,
    WRITER_GREETING,
    Visitor,
    create_session,
    log,
    mark_page,
    new_button,
    send,
    sessions_button,
    still_same_page,
)


def test_first_time_visitor_gets_a_session_an_id_and_the_welcome_message(visitor: Visitor) -> None:
    # 1. Page loads -> automatic session created
    page = visitor.open()
    expect(page.locator("body")).to_have_attribute("data-session-id", re.compile(r"^session_"))
    # 2. User is assigned a random id, shown in the header
    expect(page.locator("#user-id")).to_have_text(re.compile(r"^user_[A-Za-z0-9_-]{8,}$"))
    # 3. Welcome message displayed: the default persona's greeting, in the log
    expect(log(page)).to_have_attribute("aria-live", "polite")
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(log(page).locator(".msg").first).to_contain_text(DEFAULT_GREETING)
    expect(page.locator("#session-persona")).to_have_text("Default Assistant")
    expect(page.get_by_text("offline", exact=True)).to_be_visible()
    expect(new_button(page)).to_be_visible()
    expect(sessions_button(page)).to_be_visible()
    # the guide's buttons read "New" and "Sessions" next to their icons
    expect(new_button(page)).to_contain_text("New")
    expect(page.get_by_label("Message", exact=True)).to_be_enabled()
    expect(page.get_by_text("Sending messages needs JavaScript")).to_be_hidden()
    assert visitor.problems == []


def test_sending_shows_both_messages_with_speaker_and_time(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "Hello there")
    user, reply = log(page).locator(".msg-user").last, log(page).locator(".msg-assistant").last
    expect(user.locator(".msg-who")).to_have_text("You")
    expect(reply.locator(".msg-who")).to_have_text("Default Assistant")
    for message in (user, reply):
        expect(message.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
        expect(message.locator("time")).to_have_text(re.compile(r"\d"))
    expect(page.get_by_label("Message", exact=True)).to_have_value("")
    assert visitor.problems == []


def test_creating_a_new_session_step_by_step(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "something in the first session")
    mark_page(page)
    # 1. Click "New"
    new_button(page).click()
    dialog = page.get_by_role("dialog", name="New session")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Display Name")).to_be_focused()
    # 2. Enter display name (optional)
    dialog.get_by_label("Display Name").fill("Night shift")
    # 3. Select persona; each persona's description is shown
    persona = dialog.get_by_label("Persona")
    expect(persona.locator("option")).to_have_text(
        ["Default Assistant", "Mental Health Nurse", "Technical Support", "Creative Writer"]
    )
    expect(dialog.get_by_text("A calm, supportive listener.", exact=False)).to_be_visible()
    persona.select_option(label="Mental Health Nurse")
    # 4. Click "Create Session"
    dialog.get_by_role("button", name="Create Session").click()
    expect(dialog).to_be_hidden()
    # 5. Chat area clears and the new session begins with its persona's greeting
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(log(page)).to_contain_text(NURSE_GREETING)
    expect(log(page)).not_to_contain_text("something in the first session")
    expect(page.locator("#session-name")).to_have_text("Night shift")
    expect(page.locator("#session-persona")).to_have_text("Mental Health Nurse")
    assert still_same_page(page), "creating with JavaScript must not reload the page"
    expect(page.get_by_label("Message", exact=True)).to_be_focused()  # back to typing
    # the new session is where messages go now
    send(page, "first words to the nurse")
    expect(log(page).locator(".msg-assistant").last.locator(".msg-who")).to_have_text("Mental Health Nurse")
    assert visitor.problems == []


def test_switching_sessions_step_by_step_and_history_after_reload(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "alpha: about the default session")
    create_session(page, "Story time", "Creative Writer")
    send(page, "beta: once upon a time")
    mark_page(page)
    # 1. Click "Sessions"
    sessions_button(page).click()
    dialog = page.get_by_role("dialog", name="Your sessions")
    expect(dialog).to_be_visible()
    # 2. See the list of all active sessions, with their details; the current one is highlighted
    items = dialog.locator(".session-item")
    expect(items).to_have_count(2)
    current = dialog.locator('[aria-current="true"]')
    expect(current).to_have_count(1)
    expect(current).to_contain_text("Story time")
    expect(current).to_contain_text("Creative Writer")
    expect(current).to_contain_text("2 messages")
    expect(current.locator("time").first).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    expect(current).to_contain_text(re.compile(r"Expires in (59 min|1 h)$"))
    # an unnamed session is titled by its first message, not by the visitor's id
    other = items.filter(has_text="alpha: about the default session")
    expect(other).to_contain_text("Default Assistant")
    # 3. Click a session to switch to it
    other.click()
    expect(dialog).to_be_hidden()
    # 4. Chat history loads automatically, without a page load
    expect(log(page)).to_contain_text("alpha: about the default session")
    expect(log(page)).not_to_contain_text("beta: once upon a time")
    expect(log(page).locator(".msg").first).to_contain_text(DEFAULT_GREETING)
    assert still_same_page(page)
    expect(page.get_by_label("Message", exact=True)).to_be_focused()  # back to typing
    # 5. Selected session is highlighted
    sessions_button(page).click()
    expect(dialog.locator('[aria-current="true"]')).to_contain_text("alpha: about the default session")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # the switch is remembered across reloads, with its history
    page.reload()
    expect(log(page)).to_contain_text("alpha: about the default session")
    expect(log(page)).not_to_contain_text("beta")
    expect(page.locator("#session-persona")).to_have_text("Default Assistant")
    assert not still_same_page(page)
    sessions_button(page).click()
    expect(dialog.locator('[aria-current="true"]')).to_contain_text("alpha: about the default session")
    assert visitor.problems == []


def test_markup_in_names_and_messages_is_shown_literally_and_runs_nothing(visitor: Visitor) -> None:
    name = "<img src=x onerror=window.__pwned=1>"
    text = "<script>window.__pwned=2</script><b>bold?</b> & <i onmouseover=alert(1)>x</i>"
    page = visitor.open()
    create_session(page, name, "Technical Support")
    expect(page.locator("#session-name")).to_have_text(name)
    send(page, text)
    expect(log(page).locator(".msg-user .msg-text")).to_have_text(text)
    sessions_button(page).click()
    expect(page.locator('#sessions-list [aria-current="true"] .session-name')).to_have_text(name)
    page.keyboard.press("Escape")
    for _ in range(2):  # as inserted by the script, then as rendered by the server
        assert page.evaluate("window.__pwned") is None
        assert page.locator("main img, main script, main b, main i, dialog img").count() == 0
        page.reload()
        expect(log(page).locator(".msg-user .msg-text")).to_have_text(text)
        expect(page.locator("#session-name")).to_have_text(name)
    assert visitor.problems == []


def test_a_second_browser_sees_none_of_the_first_ones_sessions(visitors: Callable[..., Visitor]) -> None:
    alice, bob = visitors(), visitors()
    alice_page = alice.open()
    create_session(alice_page, "Alice's diary", "Mental Health Nurse")
    send(alice_page, "alice private words")
    alice_session = alice_page.locator("body").get_attribute("data-session-id")
    for address in (f"/sessions/{alice_session}", f"/?session={alice_session}"):  # even when it knows the id
        bob_page = bob.open(address)
        expect(bob_page).to_have_title("Session not found · chatapp")
        expect(bob_page.get_by_role("heading", name="Session not found")).to_be_visible()
        expect(bob_page.locator("body")).not_to_contain_text("alice")
        expect(bob_page.locator("body")).not_to_contain_text("Alice")
    bob_page = bob.open()
    expect(bob_page.locator("#user-id")).not_to_have_text(alice_page.locator("#user-id").inner_text())
    expect(log(bob_page)).not_to_contain_text("alice private words")
    sessions_button(bob_page).click()
    items = bob_page.locator("#sessions-list .session-item")
    expect(items).to_have_count(1)
    expect(items).not_to_contain_text("Alice")
    api = bob_page.request.get(f"{bob.base_url}/api/sessions")
    assert [s["user_id"] for s in api.json()["sessions"]] == [bob_page.locator("#user-id").inner_text()]
    assert bob_page.request.get(f"{bob.base_url}/api/session/{alice_session}/history").status == 404
    assert alice.problems == []
    assert [p for p in bob.problems if "status of 404 (NOT FOUND)" not in p] == []  # the two not-found pages


def test_new_session_and_switch_work_without_javascript(visitors: Callable[..., Visitor]) -> None:
    visitor = visitors(java_script_enabled=False)
    page = visitor.open()
    expect(log(page)).to_contain_text(DEFAULT_GREETING)
    first = page.locator("body").get_attribute("data-session-id")
    # sending needs the script: the box says so instead of posting and losing the text
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()
    expect(page.get_by_text("Sending messages needs JavaScript")).to_be_visible()
    new_button(page).click()  # native <button command="show-modal">, no script involved
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Display Name").fill("Plain form")
    dialog.get_by_label("Persona").select_option(label="Creative Writer")
    with page.expect_navigation():
        dialog.get_by_role("button", name="Create Session").click()
    expect(page.locator("#session-name")).to_have_text("Plain form")
    expect(log(page)).to_contain_text(WRITER_GREETING)
    sessions_button(page).click()
    with page.expect_navigation():
        page.locator(f'#sessions-list [data-session-id="{first}"]').click()
    expect(page.locator("body")).to_have_attribute("data-session-id", first)
    expect(log(page)).to_contain_text(DEFAULT_GREETING)
    assert visitor.problems == []


def test_usable_at_360_px_in_dark_mode(visitors: Callable[..., Visitor]) -> None:
    visitor = visitors(viewport={"width": 360, "height": 740}, color_scheme="dark")
    page = visitor.open()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 19, 22)", "follows prefers-color-scheme: dark"
    for button in (new_button(page), sessions_button(page), page.get_by_role("button", name="Send")):
        expect(button).to_be_in_viewport()
    new_button(page).click()
    dialog = page.get_by_role("dialog", name="New session")
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert visitor.problems == []


CONTRAST_JS = """
(selectors) => {
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const selector of selectors) {
    for (const el of document.querySelectorAll(selector)) {
      if (!el.getClientRects().length) continue;
      const a = lum(parse(getComputedStyle(el).color)), b = lum(background(el));
      out.push([selector, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
    }
  }
  return out;
}
"""
TEXT_SELECTORS = [
    ".app-name",
    ".user",
    "#user-id",
    ".badge-offline",
    "#new-button",
    "#sessions-button",
    "#send-button",
    ".session-title",
    "#session-persona",
    ".msg-who",
    ".msg-meta time",
    ".msg-text",
    ".hint",
    "#chat-alert",
    "#store-banner",
    "#retry-button",
]
DIALOG_SELECTORS = [
    "#new-dialog label",
    "#new-dialog .hint",
    ".persona-help li",
    ".persona-help strong",
    "#new-dialog .button",
    "#sessions-list .session-name",
    "#sessions-list .session-persona",
    "#sessions-list .session-meta",
    "#sessions-dialog .button",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_meets_aa_contrast(visitors: Callable[..., Visitor], scheme: str) -> None:
    visitor = visitors(color_scheme=scheme)
    page = visitor.open()
    send(page, "contrast check")
    page.evaluate("""() => {  // show the error states too
        for (const id of ['chat-alert', 'store-banner', 'retry-button']) document.getElementById(id).hidden = false;
        document.getElementById('chat-alert-text').textContent = 'Example error';
        document.getElementById('store-banner').textContent = 'Example outage';
    }""")
    ratios = page.evaluate(CONTRAST_JS, TEXT_SELECTORS)
    new_button(page).click()
    ratios += page.evaluate(CONTRAST_JS, DIALOG_SELECTORS[:5])
    page.keyboard.press("Escape")
    sessions_button(page).click()
    expect(page.locator('#sessions-list [aria-current="true"]')).to_be_visible()
    ratios += page.evaluate(CONTRAST_JS, DIALOG_SELECTORS[5:])
    checked = {selector for selector, _ in ratios}
    assert checked == set(TEXT_SELECTORS + DIALOG_SELECTORS), "every listed element was measured"
    low = [(selector, round(ratio, 2)) for selector, ratio in ratios if ratio < 4.5]
    assert low == [], f"below WCAG AA 4.5:1 in {scheme} mode"
    assert visitor.problems == []
