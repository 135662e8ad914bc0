"""The browser against a real model server (the fake): the reply grows as it streams, in every tab
showing the session, survives a reload, and Stop (from any tab) ends it keeping its text.

The app runs under gunicorn's gthread worker with the fake OpenAI-compatible server as its
model. The fake holds its reply at chosen pieces until the test lets it go on, so "the text
grew while the model was still answering" is proven by order of events, not by timing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.chatpage import Visitor, log
from tests.browser.conftest import app_with_model
from tests.fake_llm import FakeLLM
from tests.servers import AppServer, RedisServer

MODEL = "fake-browser-model"


@pytest.fixture(scope="module")
def live_server(
    redis_server: RedisServer, fake: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """Overrides the offline live server for this module: gunicorn gthread, the fake model."""
    with app_with_model(redis_server, fake, tmp_path_factory.mktemp("app-llm"), MODEL) as server:
        yield server


def words(count: int) -> list[str]:
    return [f"word{n} " for n in range(count)]


def send(page: Page, text: str) -> Locator:
    """Send a message; the assistant bubble that will hold the reply."""
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log(page).locator(".msg-user").last).to_contain_text(text)
    return log(page).locator(".msg-assistant").last


def bubble_text(bubble: Locator) -> str:
    return bubble.locator(".msg-text").inner_text().strip()


def stored_messages(page: Page, base_url: str) -> list[dict[str, Any]]:
    session_id = page.locator("body").get_attribute("data-session-id")
    response = page.request.get(f"{base_url}/api/sessions/{session_id}/messages")
    assert response.ok, response.text()
    return response.json()["messages"]


def test_online_page_has_no_offline_badge(visitor: Visitor) -> None:
    page = visitor.open()

    expect(page.locator("body")).to_have_attribute("data-assistant", "online")
    expect(page.get_by_text("offline", exact=True)).to_be_hidden()


def test_reply_grows_in_the_page_while_the_model_is_still_answering(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("slow", pieces=words(8), hold_at=(1, 4))
    page = visitor.open()

    bubble = send(page, "Write a short poem")
    expect(bubble.locator(".msg-text")).to_have_text("word0")
    first = bubble_text(bubble)
    assert not llm.finished.is_set()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()

    llm.holds[1].set()  # the model goes on to piece 3, then waits again
    expect(bubble.locator(".msg-text")).to_have_text(re.compile(r"word2 word3\s*$"))
    second = bubble_text(bubble)
    assert second.startswith(first) and len(second) > len(first)
    assert not llm.finished.is_set()
    expect(bubble).to_have_class(re.compile(r"\bmsg-streaming\b"))

    llm.holds[4].set()
    expect(bubble).not_to_have_class(re.compile(r"\bmsg-streaming\b"))
    expect(bubble.locator(".msg-text")).to_have_text(llm.reply.strip())
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    reply = stored_messages(page, visitor.base_url)[-1]
    assert reply["content"] == llm.reply and reply["metadata"]["model"] == MODEL
    assert "interrupted" not in reply["metadata"]
    assert visitor.problems == []


def wait_for_reply(page: Page, base_url: str) -> dict[str, Any]:
    """The session's last stored message once it is the assistant's."""
    deadline = time.monotonic() + 10
    while (last := stored_messages(page, base_url)[-1])["role"] != "assistant":
        assert time.monotonic() < deadline, "the reply was never stored"
        time.sleep(0.05)
    return last


def test_stop_mid_reply_ends_the_job_and_keeps_the_partial_text_marked_stopped(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("slow", pieces=words(80), hold_at=(3,), interval=0.02)
    page = visitor.open()

    bubble = send(page, "Tell me a very long story")
    expect(bubble.locator(".msg-text")).to_have_text("word0 word1 word2")
    page.get_by_role("button", name="Stop").click()  # the model stays silent: the job must notice by itself

    expect(bubble.get_by_text("Stopped: Stop was pressed")).to_be_visible()
    expect(bubble).not_to_have_class(re.compile(r"\bmsg-streaming\b"))
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.locator("#chat-alert")).to_be_hidden()  # stopped with text: a finished reply, not a failure
    assert bubble_text(bubble) == "word0 word1 word2"
    reply = wait_for_reply(page, visitor.base_url)
    assert reply["metadata"]["stopped"] is True and "incomplete" not in reply["metadata"]
    assert reply["content"] == "word0 word1 word2 "
    llm.release.set()  # the model would go on; nothing more is stored
    time.sleep(0.3)
    assert [m["role"] for m in stored_messages(page, visitor.base_url)] == ["user", "assistant"]

    page.reload()  # the stored partial reply is what the history shows
    last = log(page).locator(".msg-assistant").last
    expect(last.get_by_text("Stopped: Stop was pressed")).to_be_visible()
    expect(last.locator(".msg-text")).to_have_text("word0 word1 word2")
    assert visitor.problems == []


def test_stop_pressed_while_the_message_is_on_its_way_stops_the_reply_once_started(
    visitor: Visitor, llm: FakeLLM
) -> None:
    llm.reset("slow", hold_at=(0,))  # the model says nothing until released
    page = visitor.open()
    held: list[Route] = []
    page.route("**/api/sessions/*/messages", lambda route: held.append(route))
    page.get_by_label("Message", exact=True).fill("Never mind")
    page.get_by_role("button", name="Send", exact=True).click()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    stop.click()
    held[0].continue_()  # the server starts the reply; the page then asks it to stop

    alert = page.locator("#chat-alert")
    expect(alert).to_have_text(re.compile("Stopped before the assistant answered."))
    expect(stop).to_be_hidden()
    expect(log(page).locator(".msg-user .msg-text")).to_have_text("Never mind")
    expect(page.get_by_label("Message", exact=True)).to_have_value("")  # stored: the box is cleared
    assert [m["role"] for m in stored_messages(page, visitor.base_url)] == ["user"]
    assert not llm.first_sent.is_set()

    page.unroute("**/api/sessions/*/messages")
    llm.reset()
    page.get_by_role("button", name="Retry").click()
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply)
    expect(alert).to_be_hidden()
    assert [m["role"] for m in stored_messages(page, visitor.base_url)] == ["user", "assistant"]
    assert visitor.problems == []


def second_tab(visitor: Visitor, first: Page) -> Page:
    """The visitor's session open in another tab (same cookie), its history as the server shows it."""
    other = visitor.open(page=visitor.new_tab())
    session_id = first.locator("body").get_attribute("data-session-id") or ""
    expect(other.locator("body")).to_have_attribute("data-session-id", session_id)
    expect(log(other).locator(".msg")).to_have_count(log(first).locator(".msg").count())
    return other


def test_two_tabs_follow_one_session_and_a_reload_mid_reply_goes_on_from_there(visitor: Visitor, llm: FakeLLM) -> None:
    first = visitor.open()
    send(first, "Hello")  # a first session is stored by its first message
    expect(log(first).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply)
    other = second_tab(visitor, first)
    llm.reset("slow", pieces=words(12), hold_at=(2, 6, 9))

    send(first, "Tell me a story")
    # the other tab sees the message, then the reply growing while the model is still answering
    expect(log(other).locator(".msg-user .msg-text").last).to_have_text("Tell me a story")
    growing = log(other).locator(".msg-streaming .msg-text")
    expect(growing).to_have_text("word0 word1")
    expect(log(first).locator(".msg-streaming .msg-text")).to_have_text("word0 word1")
    expect(other.get_by_role("button", name="Stop")).to_be_visible()
    expect(other.get_by_role("button", name="Send")).to_be_disabled()
    assert not llm.finished.is_set()
    llm.holds[2].set()  # pieces 2 to 5, then the model waits again
    expect(growing).to_have_text(re.compile(r"^word0 word1 word2 word3 word4 word5\s*$"))
    assert not llm.finished.is_set()

    other.reload()  # mid-reply: the history, then the reply so far from the channel, then the rest
    expect(log(other).locator(".msg-user .msg-text").last).to_have_text("Tell me a story")
    expect(growing).to_have_text(re.compile(r"^word0 word1 word2 word3 word4 word5\s*$"))
    expect(other.get_by_role("button", name="Stop")).to_be_visible()
    llm.holds[6].set()  # pieces 6 to 8
    expect(growing).to_have_text(re.compile(r"^word0 word1 .* word7 word8\s*$"))
    expect(log(first).locator(".msg-streaming .msg-text")).to_have_text(re.compile(r"word8\s*$"))
    assert not llm.finished.is_set()
    llm.holds[9].set()

    for page in (first, other):
        expect(log(page).locator(".msg-streaming")).to_have_count(0)
        expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply.strip())
        expect(log(page).locator(".msg")).to_have_count(5)  # greeting, two messages, two replies: none twice
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
    stored = stored_messages(first, visitor.base_url)
    assert [(m["role"], m["content"]) for m in stored[2:]] == [("user", "Tell me a story"), ("assistant", llm.reply)]
    assert not {"stopped", "incomplete"} & set(stored[-1]["metadata"])
    assert visitor.problems == []


def test_switching_away_mid_reply_leaves_it_running_and_back_shows_it_where_it_is(
    visitor: Visitor, llm: FakeLLM
) -> None:
    llm.reset("slow", pieces=words(10), hold_at=(2, 6))
    page = visitor.open()
    bubble = send(page, "A long one, please")
    expect(bubble.locator(".msg-text")).to_have_text("word0 word1")
    first = page.locator("body").get_attribute("data-session-id")
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_role("dialog", name="New session").get_by_role("button", name="Create Session").click()
    expect(log(page).locator(".msg")).to_have_count(1)
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()  # nothing runs in the new session
    llm.holds[2].set()  # meanwhile the reply goes on, pieces 2 to 5

    page.get_by_role("button", name="Sessions", exact=True).click()
    page.locator(f'.session-item[data-session-id="{first}"]').click()
    growing = log(page).locator(".msg-streaming .msg-text")
    expect(growing).to_have_text(re.compile(r"^word0 word1 word2 word3 word4 word5\s*$"))
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    llm.holds[6].set()
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply.strip())
    expect(log(page).locator(".msg-streaming")).to_have_count(0)
    assert stored_messages(page, visitor.base_url)[-1]["content"] == llm.reply
    assert visitor.problems == []


WATCH_STOPPED = """() => {
  document.getElementById("stop-button").addEventListener("click", () => { window.__clickedAt = Date.now(); });
  new MutationObserver((_, observer) => {
    if (document.querySelector('#messages [data-note="stopped"]')) {
      window.__stoppedAt = Date.now();
      observer.disconnect();
    }
  }).observe(document.getElementById("messages"), { childList: true, subtree: true });
}"""


def test_stop_in_one_tab_stops_a_reply_started_in_another_within_a_second(visitor: Visitor, llm: FakeLLM) -> None:
    first = visitor.open()
    send(first, "Hello")
    other = second_tab(visitor, first)
    llm.reset("slow", pieces=words(40), hold_at=(3,))

    send(first, "Go on and on")
    for page in (first, other):
        expect(log(page).locator(".msg-streaming .msg-text")).to_have_text("word0 word1 word2")
    for page in (first, other):  # timed in the pages: expect() itself polls only every few 100 ms
        page.evaluate(WATCH_STOPPED)
    other.get_by_role("button", name="Stop").click()
    for page in (other, first):
        expect(log(page).locator(".msg-assistant").last.get_by_text("Stopped: Stop was pressed")).to_be_visible()
    clicked = other.evaluate("window.__clickedAt")
    elapsed = max(page.evaluate("window.__stoppedAt") for page in (first, other)) - clicked
    assert 0 < elapsed < 1000, f"stopped and shown in both tabs {elapsed} ms after the click"
    for page in (first, other):
        expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text("word0 word1 word2")
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    reply = stored_messages(first, visitor.base_url)[-1]
    assert reply["metadata"]["stopped"] is True and reply["content"] == "word0 word1 word2 "
    assert visitor.problems == []


def test_model_failure_keeps_the_message_and_retry_gets_the_reply(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("fail", status=500)
    page = visitor.open()

    page.get_by_label("Message", exact=True).fill("Are you there?")
    page.get_by_role("button", name="Send", exact=True).click()
    alert = page.locator("#chat-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Your message was saved")
    expect(alert).to_contain_text("HTTP 500")
    expect(log(page).locator(".msg-user").last).to_contain_text("Are you there?")
    assert [m["role"] for m in stored_messages(page, visitor.base_url)] == ["user"]

    llm.reset()  # the model is back
    page.get_by_role("button", name="Retry").click()

    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply)
    expect(alert).to_be_hidden()
    stored = stored_messages(page, visitor.base_url)
    assert [(m["role"], m["content"]) for m in stored] == [("user", "Are you there?"), ("assistant", llm.reply)]
    assert llm.requests[0].body["messages"][-1] == {"role": "user", "content": "Are you there?"}
    assert visitor.problems == []  # the failure came as an error event in a 200 stream


def test_reply_cut_by_the_length_limit_says_so_on_the_message(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset(finish_reason="length")
    page = visitor.open()

    bubble = send(page, "Tell me everything")
    note = bubble.get_by_text("Cut off at the length limit")
    expect(note).to_be_visible()
    expect(bubble.locator(".msg-text")).to_have_text(llm.reply)
    expect(page.locator("#chat-alert")).to_be_hidden()  # a finished reply, not a failure
    reply = stored_messages(page, visitor.base_url)[-1]
    assert reply["metadata"]["truncated"] is True and reply["metadata"]["finish_reason"] == "length"

    page.reload()  # the page renders the same note from the stored metadata
    last = log(page).locator(".msg-assistant").last
    expect(last.get_by_text("Cut off at the length limit")).to_be_visible()
    expect(log(page).get_by_text("Incomplete")).to_have_count(0)
    assert visitor.problems == []


def test_reply_breaking_off_keeps_its_text_marked_incomplete_and_retry_answers(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("error_line")  # llama.cpp's error line after the first piece
    page = visitor.open()

    bubble = send(page, "Explain it")
    expect(bubble.get_by_text("Incomplete: this reply broke off")).to_be_visible()
    expect(bubble.locator(".msg-text")).to_have_text(llm.pieces[0])
    alert = page.locator("#chat-alert")
    expect(alert).to_contain_text("The reply broke off")
    reply = stored_messages(page, visitor.base_url)[-1]
    assert (reply["content"], reply["metadata"]["incomplete"]) == (llm.pieces[0], True)

    llm.reset()
    page.get_by_role("button", name="Retry").click()
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply)
    expect(alert).to_be_hidden()
    page.reload()  # the new reply took the broken one's place, which is kept as its first version
    last = log(page).locator(".msg-assistant").last
    expect(last.locator(".msg-note")).to_have_count(0)
    expect(last.locator(".msg-version-count")).to_have_text("2 / 2")
    last.get_by_role("button", name="Previous version").click()
    expect(log(page).locator(".msg-assistant").last.get_by_text("Incomplete")).to_be_visible()
    assert visitor.problems == []


def test_page_shows_thinking_while_only_reasoning_arrives(visitor: Visitor, llm: FakeLLM) -> None:
    llm.reset("slow", reasoning=["Weighing", " the options"], hold_at=(0,))  # thoughts, then a pause
    page = visitor.open()

    page.get_by_label("Message", exact=True).fill("Which is better?")
    page.get_by_role("button", name="Send", exact=True).click()
    status = page.get_by_role("status").filter(has_text="is thinking…")
    expect(status).to_be_visible()
    expect(log(page).locator(".msg-streaming")).to_have_count(0)  # no text yet, no bubble
    assert not llm.first_sent.is_set()

    llm.release.set()
    expect(log(page).locator(".msg-assistant .msg-text").last).to_have_text(llm.reply)
    expect(status).to_be_hidden()
    expect(log(page).get_by_text("Weighing")).to_have_count(0)  # the thoughts are not the reply
    assert stored_messages(page, visitor.base_url)[-1]["metadata"]["reasoning"] == "Weighing the options"
    assert visitor.problems == []
