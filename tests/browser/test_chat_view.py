"""The chat view people expect, in Chromium against a fake model that answers in Markdown.

Rendered Markdown (bold, code with a working Copy, tables, links) and hostile text rendered
inert and fast; Regenerate and Edit keeping earlier versions, and the version shown being
what the model reads next; a view that opens at the newest message and follows a streamed
reply unless the reader scrolled up; the message box focused after each action; drafts,
day separators, full timestamps, and touch keyboards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from playwright.sync_api import Locator, Page, expect

from chatapp.storage import SessionStore
from tests.browser.chatpage import Visitor, log, new_button, sessions_button
from tests.browser.conftest import app_with_model
from tests.fake_llm import FakeLLM
from tests.servers import AppServer, RedisServer
from tests.test_rendering import HOSTILE

MARKDOWN_REPLY = (
    "Here is **the answer**.\n\n"
    "```python\nprint('copied exactly')\n```\n\n"
    "| planet | moons |\n|---|--:|\n| Mars | 2 |\n\n"
    "See [the docs](https://docs.example.org/guide)."
)
CODE = "print('copied exactly')\n"
PWNED = "window.__pwned === true || window.__dialogs > 0"
WATCH = "window.__pwned = false; window.__dialogs = 0; window.alert = () => { window.__dialogs += 1; }; true"


@pytest.fixture(scope="module")
def live_server(
    redis_server: RedisServer, fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The app under gunicorn (gthread) with the fake model, on the suite's redis-server."""
    with app_with_model(redis_server, fake, tmp_path_factory.mktemp("app-view"), "fake-markdown-model") as server:
        yield server


def message_box(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


def answer(llm: FakeLLM, text: str, **kwargs: Any) -> None:
    llm.reset(pieces=[text], **kwargs)


def send(page: Page, text: str) -> Locator:
    """Send a message and wait for its stored reply; the reply's element."""
    count = log(page).locator(".msg-assistant:not(.msg-streaming):not(.msg-greeting)").count()
    message_box(page).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    replies = log(page).locator(".msg-assistant:not(.msg-streaming):not(.msg-greeting)")
    expect(replies).to_have_count(count + 1)
    return replies.last


def last_reply(page: Page) -> Locator:
    return log(page).locator(".msg-assistant:not(.msg-greeting)").last


def session_id(page: Page) -> str:
    return page.locator("body").get_attribute("data-session-id") or ""


def upstream(llm: FakeLLM) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in llm.requests[-1].body["messages"][1:]]


# --- Markdown ------------------------------------------------------------------------------------


def test_a_markdown_reply_shows_bold_code_with_a_working_copy_a_table_and_a_safe_link(
    visitors: Any, llm: FakeLLM
) -> None:
    visitor: Visitor = visitors(permissions=["clipboard-read", "clipboard-write"])
    answer(llm, MARKDOWN_REPLY)
    page = visitor.open()

    for reply in (send(page, "Show me **everything**"), None):
        if reply is None:
            page.reload()  # the server renders the same markup into the page
            reply = last_reply(page)
        expect(reply.locator("strong")).to_have_text("the answer")
        code = reply.locator("pre > code")
        expect(code).to_have_text(CODE)
        expect(reply.locator(".code-lang")).to_have_text("python")
        expect(reply.locator("table th").first).to_have_text("planet")
        expect(reply.locator("table td").nth(1)).to_have_text("2")
        link = reply.get_by_role("link", name="the docs")
        expect(link).to_have_attribute("href", "https://docs.example.org/guide")
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        copy = reply.get_by_role("button", name="Copy the python code")
        copy.click()
        expect(copy).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == CODE
    expect(log(page).locator(".msg-user strong")).to_have_text("everything")  # the user's Markdown too

    reply.get_by_role("button", name="Copy", exact=True).click()  # the whole message, as written
    assert page.evaluate("navigator.clipboard.readText()") == MARKDOWN_REPLY
    assert visitor.problems == []


def inert(page: Page, article: Locator) -> None:
    """No script ran, and what the message shows holds no live element, handler or URL."""
    assert not page.evaluate(PWNED), "a script ran"
    message = article.locator(".msg-text")
    assert message.locator("script, img, iframe, svg, style, form, object, embed").count() == 0
    hrefs = message.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if not re.match(r"^(https?:|mailto:)", h or "")], hrefs
    attributes = message.evaluate(
        "m => [...m.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
        ".filter(n => n.startsWith('on'))"
    )
    assert attributes == []


def test_hostile_markdown_renders_inert_and_within_a_second_from_the_user_and_the_model(
    visitor: Visitor, llm: FakeLLM
) -> None:
    # (the unclosed fence last: it makes everything after it code)
    closed = [text for name, text in HOSTILE.items() if name != "unclosed fence"]
    corpus = "\n\n".join([*closed, "> " * 10_000 + "the bottom"])
    huge = "```\n" + "<img src=x onerror=window.__pwned=true>\n" * 25_000 + "```"  # a 1 MB code block
    corpus_end = "\n\n" + HOSTILE["unclosed fence"]
    answer(llm, corpus + "\n\n" + huge + corpus_end)
    corpus += corpus_end
    page = visitor.open()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message) or dialog.dismiss())
    page.evaluate(WATCH)

    reply = send(page, corpus)  # the user's own copy of it, and the model's with a 1 MB code block

    expect(reply.locator("pre code").nth(-2)).to_contain_text("<img src=x onerror=window.__pwned=true>")
    expect(log(page).locator(".msg-user").last).to_contain_text("<script>window.__pwned = true</script>")
    expect(reply).to_contain_text("the bottom")
    for message in (log(page).locator(".msg-user").last, reply):
        inert(page, message)

    page.reload()  # the page as the server renders it, with the 1 MB reply in it
    page.evaluate(WATCH)
    reply = last_reply(page)
    expect(reply.locator("pre code").nth(-2)).to_contain_text("onerror=window.__pwned=true")
    # From the page's first byte (the server's rendering is timed in tests/test_rendering.py) to
    # the frame after it loaded: parsed, styled, laid out and painted.
    timing = page.evaluate(
        """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done({
            first_byte: performance.getEntriesByType("navigation")[0].responseStart,
            loaded: performance.getEntriesByType("navigation")[0].loadEventEnd,
            painted: performance.now(),
        }))))"""
    )
    rendered = timing["painted"] - timing["first_byte"]
    print(f"hostile page: first byte {timing['first_byte']:.0f} ms, rendered {rendered:.0f} ms later")
    assert 0 < rendered < 1000, timing
    for message in (log(page).locator(".msg-user").last, reply):
        inert(page, message)
    assert dialogs == [] and visitor.problems == []


# --- Regenerate and Edit -------------------------------------------------------------------------


def test_regenerating_twice_gives_three_versions_and_the_shown_one_is_the_models_context(
    visitor: Visitor, llm: FakeLLM
) -> None:
    answer(llm, "First reply")
    page = visitor.open()
    reply = send(page, "Tell me a joke")
    expect(reply.locator(".msg-versions")).to_be_hidden()  # one version: no counter

    for text in ("Second reply", "Third reply"):
        answer(llm, text)
        last_reply(page).get_by_role("button", name="Regenerate").click()
        expect(last_reply(page).locator(".msg-text")).to_have_text(text)
    reply = last_reply(page)
    expect(reply.locator(".msg-version-count")).to_have_text("3 / 3")
    expect(log(page).locator(".msg:not(.msg-greeting)")).to_have_count(2)

    reply.get_by_role("button", name="Previous version").click()
    expect(last_reply(page).locator(".msg-version-count")).to_have_text("2 / 3")
    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page).locator(".msg-version-count")).to_have_text("1 / 3")
    expect(last_reply(page).locator(".msg-text")).to_have_text("First reply")
    expect(last_reply(page).get_by_role("button", name="Previous version")).to_be_disabled()

    page.reload()  # the version shown was stored
    expect(last_reply(page).locator(".msg-text")).to_have_text("First reply")
    expect(last_reply(page).locator(".msg-version-count")).to_have_text("1 / 3")
    answer(llm, "Another")
    send(page, "One more")
    assert upstream(llm) == [("user", "Tell me a joke"), ("assistant", "First reply"), ("user", "One more")]
    assert visitor.problems == []


def test_regenerate_after_stop_keeps_the_stopped_reply_as_a_version(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("slow", pieces=[f"word{n} " for n in range(30)], hold_at=(2,))
    page = visitor.open()
    message_box(page).fill("Go on")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log(page).locator(".msg-streaming .msg-text")).to_have_text("word0 word1")
    page.get_by_role("button", name="Stop").click()
    expect(last_reply(page).get_by_text("Stopped: Stop was pressed")).to_be_visible()

    answer(llm, "A whole answer")
    last_reply(page).get_by_role("button", name="Regenerate").click()

    expect(last_reply(page).locator(".msg-text")).to_have_text("A whole answer")
    expect(last_reply(page).locator(".msg-version-count")).to_have_text("2 / 2")
    last_reply(page).get_by_role("button", name="Previous version").click()
    expect(last_reply(page).get_by_text("Stopped: Stop was pressed")).to_be_visible()
    assert visitor.problems == []


def test_editing_the_last_message_asks_again_and_keeps_the_old_turn_as_a_version(
    visitor: Visitor, llm: FakeLLM
) -> None:
    answer(llm, "Paris")
    page = visitor.open()
    send(page, "Capital of France?")
    first = log(page).locator(".msg-user").last
    message_box(page).fill("a draft, set aside while editing")

    first.get_by_role("button", name="Edit").click()
    expect(message_box(page)).to_be_focused()
    expect(message_box(page)).to_have_value("Capital of France?")
    expect(page.get_by_text("Editing your last message")).to_be_visible()
    answer(llm, "Rome")
    message_box(page).fill("Capital of Italy?")
    page.get_by_role("button", name="Send", exact=True).click()

    expect(last_reply(page).locator(".msg-text")).to_have_text("Rome")
    user = log(page).locator(".msg-user").last
    expect(user.locator(".msg-text")).to_have_text("Capital of Italy?")
    expect(user.locator(".msg-version-count")).to_have_text("2 / 2")
    expect(log(page).locator(".msg:not(.msg-greeting)")).to_have_count(2)
    expect(page.get_by_text("Editing your last message")).to_be_hidden()
    expect(message_box(page)).to_have_value("a draft, set aside while editing")
    assert upstream(llm) == [("user", "Capital of Italy?")]

    user.get_by_role("button", name="Previous version").click()  # the old question, with its answer
    expect(log(page).locator(".msg-user").last.locator(".msg-text")).to_have_text("Capital of France?")
    expect(last_reply(page).locator(".msg-text")).to_have_text("Paris")
    expect(log(page).locator(".msg-user").last.locator(".msg-version-count")).to_have_text("1 / 2")
    assert visitor.problems == []


# --- following the conversation ----------------------------------------------------------------


def fill(redis_server: RedisServer, sid: str, count: int, days_ago: int = 0) -> None:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        store = SessionStore(client, 3600)
        stamp = when.isoformat(timespec="milliseconds")
        batch = [
            {"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}\n\nwith a second paragraph",
             "timestamp": stamp, "metadata": {}}
            for n in range(count)
        ]  # fmt: skip
        store.append_messages(sid, batch, announced=False)


def in_view(page: Page, target: Locator) -> bool:
    """Whether the element's bottom edge is inside the visible part of the log."""
    return target.evaluate(
        """el => {
            const box = document.getElementById("messages").getBoundingClientRect();
            const r = el.getBoundingClientRect();
            return r.bottom <= box.bottom + 1 && r.bottom >= box.top;
        }"""
    )


def test_after_a_reload_the_newest_message_is_in_view(visitor: Visitor, llm: FakeLLM, redis_server) -> None:
    page = visitor.open()
    send(page, "first")
    fill(redis_server, session_id(page), 40)

    page.reload()

    newest = log(page).locator(".msg").last
    expect(newest).to_contain_text("message 39")
    page.wait_for_function("document.getElementById('messages').scrollHeight > 1000")
    assert in_view(page, newest)
    expect(page.get_by_role("button", name="Jump to latest")).to_be_hidden()
    assert visitor.problems == []


def test_a_streamed_reply_longer_than_the_view_stays_in_view_until_the_reader_scrolls_up(
    visitor: Visitor, llm: FakeLLM
) -> None:
    lines = [f"line {n}\n" for n in range(120)]
    llm.reset("slow", pieces=lines, hold_at=(40, 80, 110))
    page = visitor.open()
    message_box(page).fill("A long poem, please")
    page.get_by_role("button", name="Send", exact=True).click()
    bubble = log(page).locator(".msg-streaming")
    expect(bubble.locator(".msg-text")).to_contain_text("line 39")
    assert page.evaluate("document.getElementById('messages').scrollHeight > innerHeight")
    assert in_view(page, bubble)  # its last line is visible

    llm.holds[40].set()
    expect(bubble.locator(".msg-text")).to_contain_text("line 79")
    assert in_view(page, bubble)

    page.evaluate("document.getElementById('messages').scrollTop = 100")  # the reader goes back up
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    llm.holds[80].set()
    expect(bubble.locator(".msg-text")).to_contain_text("line 109")
    assert page.evaluate("document.getElementById('messages').scrollTop") == 100  # it did not jump
    assert not in_view(page, bubble)
    expect(jump).to_be_visible()

    jump.click()
    expect(jump).to_be_hidden()
    assert in_view(page, bubble)
    llm.holds[110].set()
    expect(last_reply(page)).not_to_have_class(re.compile("msg-streaming"))
    expect(last_reply(page)).to_contain_text("line 119")
    assert in_view(page, last_reply(page))
    assert visitor.problems == []


# --- focus, drafts, touch, days and times ------------------------------------------------------


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_the_message_box_has_the_focus_after_load_send_stop_create_and_switch(visitor: Visitor, llm: FakeLLM) -> None:
    page = visitor.open()
    expect(message_box(page)).to_be_enabled()
    assert focused_id(page) == "message-input"  # load

    send(page, "Hello")  # clicking Send
    assert focused_id(page) == "message-input"
    first = session_id(page)

    llm.reset("slow", hold_at=(0,))
    message_box(page).fill("Wait")
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    assert focused_id(page) == "message-input"  # Stop

    new_button(page).click()
    page.get_by_role("dialog", name="New session").get_by_role("button", name="Create Session").click()
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(message_box(page)).to_be_focused()  # Create

    sessions_button(page).click()
    page.locator(f'.session-item[data-session-id="{first}"]').click()
    expect(page.locator("body")).to_have_attribute("data-session-id", first)
    expect(message_box(page)).to_be_focused()  # Switch
    assert visitor.problems == []


def test_a_draft_is_kept_per_session_across_reloads_and_cleared_once_sent(visitor: Visitor, llm: FakeLLM) -> None:
    page = visitor.open()
    send(page, "stored first")
    first = session_id(page)
    message_box(page).fill("half a thought")

    page.reload()
    expect(message_box(page)).to_have_value("half a thought")

    new_button(page).click()
    page.get_by_role("dialog", name="New session").get_by_role("button", name="Create Session").click()
    expect(message_box(page)).to_have_value("")  # another session, another draft
    page.reload()
    expect(message_box(page)).to_have_value("")

    sessions_button(page).click()
    page.locator(f'.session-item[data-session-id="{first}"]').click()
    expect(message_box(page)).to_have_value("half a thought")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(message_box(page)).to_have_value("")
    page.reload()
    expect(message_box(page)).to_have_value("")
    assert visitor.problems == []


def test_on_a_touch_keyboard_enter_adds_a_line_and_send_sends(visitors: Any, llm: FakeLLM) -> None:
    visitor: Visitor = visitors(has_touch=True, is_mobile=True, viewport={"width": 390, "height": 800})
    page = visitor.open()
    expect(page.get_by_text("Enter adds a line; the Send button sends.")).to_be_visible()

    message_box(page).click()
    page.keyboard.type("first")
    page.keyboard.press("Enter")
    page.keyboard.type("second")

    expect(message_box(page)).to_have_value("first\nsecond")
    expect(log(page).locator(".msg-user")).to_have_count(0)
    page.get_by_role("button", name="Send", exact=True).tap()
    expect(log(page).locator(".msg-user .msg-text")).to_have_text("first\nsecond")
    assert visitor.problems == []


def test_days_are_separated_and_a_message_shows_its_full_time_on_hover_and_focus(
    visitor: Visitor, llm: FakeLLM, redis_server
) -> None:
    page = visitor.open()
    send(page, "soon cleared")
    sid = session_id(page)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    cleared = page.request.delete(f"{visitor.base_url}/api/session/{sid}/clear", headers={"X-CSRFToken": token})
    assert cleared.ok, cleared.text()
    fill(redis_server, sid, 2, days_ago=3)
    fill(redis_server, sid, 2, days_ago=1)
    fill(redis_server, sid, 1, days_ago=0)

    page.reload()

    separators = log(page).locator(".day-separator")
    expect(separators).to_have_count(3)
    labels = separators.all_inner_texts()
    assert labels[1:] == ["Yesterday", "Today"]
    assert re.search(r"\d{4}", labels[0]), labels  # three days ago: its date
    time = log(page).locator(".msg time").last
    full = time.get_attribute("data-full") or ""
    assert re.search(r"\d{4}", full) and time.get_attribute("title") == full
    time.focus()  # keyboard users see it too
    assert full in time.evaluate("t => getComputedStyle(t, '::after').content")
    assert visitor.problems == []


def test_the_visitor_id_is_shown_as_a_quiet_detail(visitor: Visitor) -> None:
    page = visitor.open()
    quiet = page.locator(".user")
    expect(quiet.locator("#user-id")).to_have_text(re.compile(r"^user_"))
    size = quiet.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert size < page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
