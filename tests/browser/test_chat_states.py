"""Keyboard-only use, and the chat's waiting, streaming, stopped and error states.

Server answers the app cannot produce on demand (a model error, a store outage) are played
back with Playwright's request routing, and the session's live channel by a stand-in
EventSource that the test speaks through, in the shapes of the channel's events.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.chatpage import DEFAULT_GREETING, Visitor, log, new_button, send, sessions_button

TECH_GREETING = "Hi, I'm technical support. What's going wrong, and on what device or system?"
STATUS_LINE = "Failed to load resource:"  # the console's note on an HTTP error or network failure


def tab_to(page: Page, target: Locator, limit: int = 15) -> None:
    """Press Tab until `target` has focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{target} never received focus by Tab")


def has_focus_ring(target: Locator) -> bool:
    return target.evaluate("el => getComputedStyle(el).outlineStyle !== 'none' && el.matches(':focus-visible')")


def message_box(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(role: str, content: str, **metadata: object) -> dict:
    return {"role": role, "content": content, "timestamp": now_iso(), "metadata": metadata}


def unexpected(visitor: Visitor) -> list[str]:
    """Problems other than the console's note on a failure that the test itself injected."""
    return [p for p in visitor.problems if STATUS_LINE not in p]


def test_keyboard_only_creating_sending_and_switching(visitor: Visitor) -> None:
    page = visitor.open()
    # create: Tab to "New", Enter, type, choose a persona by typing, Tab to "Create Session", Enter
    tab_to(page, new_button(page))
    assert has_focus_ring(new_button(page))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New session")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Display Name")).to_be_focused()
    page.keyboard.type("Keys only")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Description")).to_be_focused()
    page.keyboard.type("Typed with keys")
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Persona")).to_be_focused()
    page.keyboard.type("Tech")
    expect(dialog.get_by_label("Persona")).to_have_value("technical_support")
    tab_to(page, dialog.get_by_role("button", name="Create Session"))
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(message_box(page)).to_be_focused()  # created: back to typing
    expect(log(page)).to_contain_text(TECH_GREETING)
    expect(page.locator("#session-name")).to_have_text("Keys only")
    # send: Shift+Enter adds a line, Enter sends
    tab_to(page, message_box(page))
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(message_box(page)).to_have_value("first line\nsecond line")
    page.keyboard.press("Enter")
    expect(log(page).locator(".msg-user .msg-text")).to_have_text("first line\nsecond line")
    expect(log(page).locator(".msg-assistant").last).to_contain_text("I'm offline")
    expect(message_box(page)).to_have_value("")
    # Escape closes a modal and focus returns to the message box
    tab_to(page, new_button(page))
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(message_box(page)).to_be_focused()
    # switch: "Sessions", focus starts on the current session, Down to the other one, Enter
    tab_to(page, sessions_button(page))
    page.keyboard.press("Enter")
    sessions = page.get_by_role("dialog", name="Your sessions")
    expect(sessions).to_be_visible()
    current = sessions.locator('[aria-current="true"]')
    expect(current).to_be_focused()
    expect(current).to_contain_text("Keys only")
    page.keyboard.press("ArrowDown")
    other = sessions.locator(".session-item").filter(has_not_text="Keys only")
    expect(other).to_be_focused()
    assert has_focus_ring(other)
    page.keyboard.press("Enter")
    expect(sessions).to_be_hidden()
    expect(message_box(page)).to_be_focused()  # switched: back to typing
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(log(page)).to_contain_text(DEFAULT_GREETING)
    assert visitor.problems == []


def test_typing_indicator_and_stop_button_while_the_message_is_on_its_way(visitor: Visitor) -> None:
    page = visitor.open()
    held: list[Route] = []
    page.route("**/api/sessions/*/messages", lambda route: held.append(route))
    message_box(page).fill("are you there?")
    message_box(page).press("Enter")
    typing = page.get_by_role("status").filter(has_text="is typing")
    expect(typing).to_be_visible()
    expect(log(page)).to_have_attribute("aria-busy", "true")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    for _ in range(50):  # the post follows storing the session and opening its channel
        if held:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1
    headers = held[0].request.headers
    assert headers["prefer"] == "respond-async" and headers["accept"] == "application/json"
    assert headers["x-csrftoken"]
    assert held[0].request.post_data_json == {"content": "are you there?"}
    expect(log(page).locator(".msg-user")).to_have_count(0)  # shown once stored, from the channel
    held[0].fulfill(response=held[0].fetch())  # the real server's answer, released now
    expect(log(page).locator(".msg-user .msg-text")).to_have_text("are you there?")
    expect(log(page).locator(".msg-assistant").last).to_contain_text("I'm offline")
    expect(typing).to_be_hidden()
    expect(log(page)).to_have_attribute("aria-busy", "false")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(message_box(page)).to_have_value("")
    assert visitor.problems == []


def test_a_reply_already_running_keeps_the_draft_and_says_why(visitor: Visitor) -> None:
    page = visitor.open()
    busy = {"code": 409, "name": "Conflict", "message": "A reply is being written.", "fields": {"reply_id": "r1"}}
    page.route("**/api/sessions/*/messages", lambda route: route.fulfill(status=409, json={"error": busy}))
    message_box(page).fill("me too")
    message_box(page).press("Enter")
    alert = page.get_by_role("alert").filter(has_text="A reply is already being written in this session")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Your message is still in the box")
    expect(page.get_by_role("button", name="Retry")).to_be_hidden()
    expect(message_box(page)).to_have_value("me too")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    assert unexpected(visitor) == []


# The session's channel played by the test: a stand-in for EventSource that window.__emit(kind,
# data) speaks through, with ids as the server's; it opens when the page opens it, unless
# window.__holdOpen is set (then window.__open() opens it).
FAKE_CHANNEL = """
(() => {
  const sources = [];
  let next = 0;
  class FakeEventSource extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.readyState = 0;
      sources.push(this);
      if (!window.__holdOpen) setTimeout(() => this.__open(), 0);
    }
    __open() {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.dispatchEvent(new Event("open"));
    }
    close() { this.readyState = 2; }
  }
  Object.assign(FakeEventSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
  window.EventSource = FakeEventSource;
  window.__channels = sources;
  window.__open = () => sources.forEach((s) => s.__open());
  window.__emit = (kind, data) => {
    const lastEventId = `${Date.now()}-${next++}`;
    for (const s of sources) {
      if (s.readyState === 1) s.dispatchEvent(new MessageEvent(kind, { data: JSON.stringify(data), lastEventId }));
    }
  };
})();
"""


def with_fake_channel(visitor: Visitor) -> Page:
    visitor.page.add_init_script(FAKE_CHANNEL)
    return visitor.open()


def emit(page: Page, kind: str, data: dict) -> None:
    page.evaluate("([kind, data]) => window.__emit(kind, data)", [kind, data])


def accept_async(page: Page, path: str = "messages", reply_id: str = "r1") -> list[dict]:
    """Answer the page's posts to `path` with 202 (a reply started) without storing anything;
    the recorded requests' headers."""
    posted: list[dict] = []

    def answer(route: Route) -> None:
        posted.append(route.request.headers)
        route.fulfill(status=202, json={"session_id": "s", "reply_id": reply_id, "user_message": None})

    page.route(f"**/api/sessions/*/{path}", answer)
    return posted


def send_on_fake_channel(page: Page, text: str, reply_id: str = "r1") -> None:
    """Send; the test's channel tells of the message and the reply's start."""
    message_box(page).fill(text)
    message_box(page).press("Enter")
    expect(message_box(page)).to_have_value("")  # answered 202: stored
    emit(page, "message", message("user", text))
    emit(page, "reply", {"reply_id": reply_id, "started_at": now_iso()})
    expect(log(page).locator(".msg-user .msg-text").last).to_have_text(text)


def test_streamed_reply_is_rendered_as_text_when_done(visitor: Visitor) -> None:
    page = with_fake_channel(visitor)
    accept_async(page)
    reply = "Hello <b>there</b>, line one\nline two"
    send_on_fake_channel(page, "stream please")
    emit(page, "delta", {"reply_id": "r1", "text": "Hello <b>the"})
    emit(page, "delta", {"reply_id": "r1", "text": "re</b>, line one\nline two"})
    expect(log(page).locator(".msg-streaming .msg-text")).to_have_text(reply)
    emit(page, "done", {"reply_id": "r1", "assistant_message": message("assistant", reply), "session": {}})
    expect(log(page).locator(".msg-streaming")).to_have_count(0)
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(reply)
    assert page.locator("#messages b").count() == 0
    expect(page.get_by_role("status").filter(has_text="is typing")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert visitor.problems == []


def test_model_error_keeps_message_and_offers_retry(visitor: Visitor) -> None:
    page = with_fake_channel(visitor)
    accept_async(page)
    send_on_fake_channel(page, "will this fail?")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    error = {"code": 504, "name": "Gateway Timeout", "message": "The model did not answer in time."}
    emit(page, "error", {"reply_id": "r1", "error": error, "assistant_message": None, "session": {}})
    alert = page.locator("#chat-alert")
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("Your message was saved, but the assistant did not answer")
    expect(alert).to_contain_text("The model did not answer in time.")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    retry = page.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    # a server without /reply (404) is handled
    page.route(
        "**/api/sessions/*/reply",
        lambda route: route.fulfill(
            status=404,
            json={"error": {"code": 404, "name": "Not Found", "message": "The requested URL was not found."}},
        ),
    )
    retry.click()
    expect(alert).to_contain_text("Asking again is not available on this server")
    expect(retry).to_be_hidden()
    # a server with /reply starts the reply, and the channel tells of it
    page.unroute("**/api/sessions/*/reply")
    retried = accept_async(page, "reply", "r2")
    page.evaluate("document.getElementById('retry-button').hidden = false")
    retry.click()
    expect(alert).to_be_hidden()
    expect(page.get_by_role("status").filter(has_text="is typing")).to_be_visible()
    assert retried and retried[0]["prefer"] == "respond-async"
    emit(page, "reply", {"reply_id": "r2", "started_at": now_iso()})
    emit(page, "delta", {"reply_id": "r2", "text": "Here I am"})
    emit(page, "done", {"reply_id": "r2", "assistant_message": message("assistant", "Here I am after all.")})
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text("Here I am after all.")
    expect(log(page).locator(".msg-user")).to_have_count(1)  # a retry stores no message
    expect(alert).to_be_hidden()
    assert unexpected(visitor) == []


@pytest.mark.parametrize(
    ("ending", "said", "can_retry"),
    [
        (
            {"error": {"code": 409, "name": "Conflict", "message": "Stopped before."}, "stopped": True},
            "Stopped before the assistant answered.",
            True,
        ),
        (
            {"error": {"code": 413, "name": "Content Too Large", "message": "Too long for the model."}},
            "Your message was saved, but the assistant did not answer: Too long for the model.",
            False,
        ),
        (
            {
                "error": {"code": 503, "name": "Service Unavailable", "message": "Busy.", "retry_after": 7},
                "assistant_message": message("assistant", "Half", incomplete=True),
            },
            "The reply broke off: Busy.",
            True,
        ),
    ],
    ids=["stopped-before-text", "too-long", "broke-off"],
)
def test_how_a_reply_ended_is_said_and_retry_offered_where_it_can_help(
    visitor: Visitor, ending: dict, said: str, can_retry: bool
) -> None:
    page = with_fake_channel(visitor)
    accept_async(page)
    send_on_fake_channel(page, "go")
    if ending.get("assistant_message"):
        emit(page, "delta", {"reply_id": "r1", "text": "Half"})
    emit(page, "error", {"reply_id": "r1", "assistant_message": None, "session": {}, **ending})
    expect(page.locator("#chat-alert")).to_have_text(re.compile(re.escape(said)))
    retry = page.get_by_role("button", name="Retry")
    if can_retry:
        expect(retry).to_be_visible()
    else:
        expect(retry).to_be_hidden()
    expect(log(page).locator(".msg-streaming")).to_have_count(0)
    if ending.get("assistant_message"):  # the text kept, stored and marked
        last = log(page).locator(".msg-assistant").last
        expect(last.locator(".msg-text")).to_have_text("Half")
        expect(last.get_by_text("Incomplete")).to_be_visible()
    else:
        expect(log(page).locator(".msg-assistant")).to_have_count(1)  # the greeting only
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert unexpected(visitor) == []


def test_errors_before_sending_keep_the_text_and_store_outage_shows_a_banner(visitor: Visitor) -> None:
    page = visitor.open()
    answers = iter(
        [
            lambda route: route.abort("failed"),
            lambda route: route.fulfill(
                status=503,
                json={
                    "error": {
                        "code": 503,
                        "name": "Service Unavailable",
                        "message": "The session store is unavailable; try again shortly.",
                    }
                },
            ),
        ]
    )
    page.route("**/api/sessions/*/messages", lambda route: next(answers)(route))
    message_box(page).fill("keep me")
    message_box(page).press("Enter")
    alert = page.locator("#chat-alert")
    expect(alert).to_contain_text("Your message was not sent: The network request failed")
    expect(message_box(page)).to_have_value("keep me")
    page.get_by_role("button", name="Send").click()
    expect(alert).to_contain_text("The session store is unavailable; try again shortly.")
    expect(page.locator("#store-banner")).to_be_visible()
    expect(page.locator("#store-banner")).to_contain_text("The session store is unavailable")
    expect(message_box(page)).to_have_value("keep me")
    expect(page.get_by_role("button", name="Retry")).to_be_hidden()
    # the store is back: sending works and the banner goes away
    page.unroute("**/api/sessions/*/messages")
    send(page, "keep me")
    expect(page.locator("#store-banner")).to_be_hidden()
    failed = [p for p in visitor.problems if "request failed" in p]
    assert len(failed) == 1 and re.search(r"POST .*/messages", failed[0])
    assert [p for p in unexpected(visitor) if "request failed" not in p] == []


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def test_page_works_under_the_apps_own_strict_content_security_policy(visitor: Visitor) -> None:
    page = visitor.page
    page.add_init_script("""
        window.__violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
    """)
    with page.expect_response(lambda r: r.request.resource_type == "document") as served:
        visitor.open()
    assert served.value.headers["content-security-policy"] == CSP  # sent by the app, not the test
    page = visitor.page
    assert page.evaluate("typeof window.__violations") == "object"
    send(page, "under a strict policy")
    new_button(page).click()
    page.get_by_label("Display Name").fill("CSP")
    page.get_by_role("button", name="Create Session").click()
    expect(log(page)).to_contain_text(DEFAULT_GREETING)
    sessions_button(page).click()
    page.locator(".session-item").filter(has_not_text="CSP").click()
    expect(log(page)).to_contain_text("under a strict policy")
    page.reload()
    expect(log(page)).to_contain_text("under a strict policy")
    assert page.evaluate("window.__violations") == []
    assert visitor.problems == []


def test_streamed_text_grows_as_it_arrives_and_stop_keeps_the_part_received(visitor: Visitor) -> None:
    page = with_fake_channel(visitor)
    accept_async(page)
    stops: list[Route] = []

    def stop(route: Route) -> None:
        stops.append(route)
        route.fulfill(status=202, json={"session_id": "s", "reply_id": "r1", "stopping": True})

    page.route("**/api/sessions/*/stop", stop)
    bubble = log(page).locator(".msg-assistant").last
    typing = page.get_by_role("status").filter(has_text="is typing")
    for stopped in (False, True):
        send_on_fake_channel(page, "tell me a story")
        expect(typing).to_be_visible()
        emit(page, "delta", {"reply_id": "r1", "text": "Once upon"})
        expect(bubble.locator(".msg-text")).to_have_text("Once upon")
        expect(bubble).to_have_class(re.compile(r"\bmsg-streaming\b"))
        expect(typing).to_be_hidden()
        emit(page, "delta", {"reply_id": "r1", "text": " a time"})
        expect(bubble.locator(".msg-text")).to_have_text("Once upon a time")
        expect(page.get_by_role("button", name="Stop")).to_be_visible()
        if stopped:
            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_role("button", name="Stop")).to_be_disabled()  # asked once
            assert len(stops) == 1 and stops[0].request.method == "POST"
            kept = message("assistant", "Once upon a time", stopped=True)
            emit(page, "done", {"reply_id": "r1", "assistant_message": kept, "session": {}, "stopped": True})
            expect(bubble.get_by_text("Stopped: Stop was pressed")).to_be_visible()
            expect(bubble.locator(".msg-text")).to_have_text("Once upon a time")
        else:
            done = message("assistant", "Once upon a time, the end.")
            emit(page, "done", {"reply_id": "r1", "assistant_message": done, "session": {}})
            expect(bubble.locator(".msg-text")).to_have_text("Once upon a time, the end.")
            expect(bubble.locator(".msg-note")).to_have_count(0)
        expect(bubble).not_to_have_class(re.compile(r"\bmsg-streaming\b"))
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(log(page).locator(".msg-assistant")).to_have_count(3)  # greeting, finished reply, stopped reply
    assert visitor.problems == []


def test_a_reset_reloads_the_history_and_the_running_reply_goes_on(visitor: Visitor) -> None:
    page = with_fake_channel(visitor)
    message_box(page).fill("stored while the channel was away")
    message_box(page).press("Enter")
    expect(message_box(page)).to_have_value("")  # the real server stored it; the test's channel says nothing
    expect(log(page).locator(".msg")).to_have_count(1)
    emit(page, "reset", {"session_id": "s"})
    emit(page, "reply", {"reply_id": "r7"})  # the server's snapshot of a reply running meanwhile
    emit(page, "delta", {"reply_id": "r7", "text": "So far"})
    expect(log(page).locator(".msg-user .msg-text")).to_have_text("stored while the channel was away")
    expect(log(page).locator(".msg-assistant").nth(1)).to_contain_text("I'm offline")
    expect(log(page).locator(".msg").last).to_have_class(re.compile(r"\bmsg-streaming\b"))
    expect(log(page).locator(".msg-streaming .msg-text")).to_have_text("So far")
    emit(page, "delta", {"reply_id": "r7", "text": ", and on"})
    emit(page, "done", {"reply_id": "r7", "assistant_message": message("assistant", "So far, and on")})
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text("So far, and on")
    expect(log(page).locator(".msg")).to_have_count(4)
    assert visitor.problems == []


def test_what_was_stored_before_the_channel_opened_is_shown_once(visitor: Visitor) -> None:
    """The page's history is read before its channel opens: what came in between is caught up,
    and what both the history and the channel hold is shown once."""
    page = visitor.open()
    send(page, "first")  # stores the session
    page.add_init_script(FAKE_CHANNEL + "window.__holdOpen = true;")
    page.reload()
    expect(log(page).locator(".msg")).to_have_count(3)
    session_id = page.locator("body").get_attribute("data-session-id")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    posted = page.request.post(
        f"{visitor.base_url}/api/sessions/{session_id}/messages",
        data={"content": "from elsewhere"},
        headers={"X-CSRFToken": token or ""},
    )
    assert posted.status == 201, posted.text()
    page.evaluate("window.__open()")
    # stored as the channel opened: the history read to catch up holds them, and the channel
    # tells of them too, while the page catches up or just after
    # (each message event names the message's index in the session, as the server's do)
    emit(page, "message", {**posted.json()["user_message"], "index": 2})
    expect(log(page).locator(".msg")).to_have_count(5)
    emit(page, "message", {**posted.json()["assistant_message"], "index": 3})
    emit(page, "message", {**message("user", "after it opened"), "index": 4})
    expect(log(page).locator(".msg-user .msg-text")).to_have_text(["first", "from elsewhere", "after it opened"])
    expect(log(page).locator(".msg")).to_have_count(6)
    assert visitor.problems == []


def test_changes_to_the_session_made_elsewhere_show_at_once(visitor: Visitor) -> None:
    page = visitor.open()
    send(page, "hello")
    session_id = page.locator("body").get_attribute("data-session-id")
    headers = {"X-CSRFToken": page.locator('meta[name="csrf-token"]').get_attribute("content") or ""}
    api = f"{visitor.base_url}/api/sessions/{session_id}"
    assert page.request.patch(api, data={"display_name": "<b>Renamed</b>"}, headers=headers).ok
    expect(page.locator("#session-name")).to_have_text("<b>Renamed</b>")
    assert page.request.delete(f"{visitor.base_url}/api/session/{session_id}/clear", headers=headers).ok
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(log(page)).to_contain_text(DEFAULT_GREETING)
    assert page.request.delete(api, headers=headers).ok
    alert = page.get_by_role("alert").filter(has_text="This session was deleted")
    expect(alert).to_be_visible()
    expect(message_box(page)).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    # another session works as before
    new_button(page).click()
    page.get_by_role("dialog", name="New session").get_by_role("button", name="Create Session").click()
    expect(alert).to_be_hidden()
    send(page, "in a new session")
    assert page.locator("main b").count() == 0
    assert unexpected(visitor) == []


def test_rejected_new_session_form_says_why_and_keeps_the_input(visitor: Visitor) -> None:
    page = visitor.open()
    first = page.locator("body").get_attribute("data-session-id")
    new_button(page).click()
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Display Name").fill("Treasure hunt")
    # a persona the server does not know (e.g. removed since the page loaded)
    dialog.get_by_label("Persona").evaluate("s => s.add(new Option('Pirate', 'pirate'))")
    dialog.get_by_label("Persona").select_option("pirate")
    dialog.get_by_role("button", name="Create Session").click()
    error = dialog.get_by_role("alert")
    expect(error).to_contain_text("The session was not created")
    expect(error).to_contain_text("Choose one of the listed personas.")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Persona")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Display Name")).to_have_value("Treasure hunt")
    # still the first session: stored before the create (so it stays listed), nothing else
    listed = page.request.get(f"{visitor.base_url}/api/sessions").json()["sessions"]
    assert len(listed) == 1 and first and first.startswith("session_unwritten_")
    expect(page.locator("body")).to_have_attribute("data-session-id", listed[0]["session_id"])
    # fixed, it goes through and the message is gone
    dialog.get_by_label("Persona").select_option(label="Creative Writer")
    dialog.get_by_role("button", name="Create Session").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#session-name")).to_have_text("Treasure hunt")
    new_button(page).click()
    expect(dialog.get_by_role("alert")).to_be_hidden()
    expect(dialog.get_by_label("Display Name")).to_have_value("")
    assert unexpected(visitor) == []
