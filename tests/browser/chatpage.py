"""The chat page as tests see it: a visitor (browser context) and the page's controls by role and name."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, ConsoleMessage, Locator, Page, Request, expect

DEFAULT_GREETING = "Hello! I'm your assistant. What would you like to talk about?"
NURSE_GREETING = "Hi, I'm here to listen. How are you feeling today?"
WRITER_GREETING = "Hello, fellow storyteller! What shall we write today?"


def new_button(page: Page) -> Locator:
    return page.get_by_role("button", name="New", exact=True)


def sessions_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Sessions", exact=True)


def log(page: Page) -> Locator:
    return page.get_by_role("log")


def send(page: Page, text: str, shown: str | None = None) -> None:
    """Send ``text``; the page shows it as ``shown`` (rendered from Markdown; the text by default)."""
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log(page).locator(".msg-user").last).to_have_text(re.compile(re.escape(shown or text)))
    expect(log(page).locator(".msg-assistant").last).to_contain_text("I'm offline")


def create_session(page: Page, name: str, persona: str) -> None:
    new_button(page).click()
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Display Name").fill(name)
    dialog.get_by_label("Persona").select_option(label=persona)
    dialog.get_by_role("button", name="Create Session").click()
    expect(dialog).to_be_hidden()


def manager(page: Page) -> Locator:
    """Opens the Sessions modal (the manager) and answers it."""
    sessions_button(page).click()
    dialog = page.get_by_role("dialog", name="Your sessions")
    expect(dialog).to_be_visible()
    return dialog


def row(dialog: Locator, title: str) -> Locator:
    """The manager's row of the session titled `title`."""
    return dialog.locator(".session-row").filter(has=dialog.page.locator(".session-name", has_text=title))


def mark_page(page: Page) -> None:
    """Survives only as long as no page load happens."""
    page.evaluate("window.__samePage = true")


def still_same_page(page: Page) -> bool:
    return page.evaluate("window.__samePage === true")


class Visitor:
    """One browser context (one visitor) and its pages (tabs), recording what went wrong on them."""

    def __init__(self, context: BrowserContext, base_url: str) -> None:
        self.context = context
        self.base_url = base_url
        self.problems: list[str] = []
        self.page: Page = self.new_tab()

    def new_tab(self) -> Page:
        """Another page of the same visitor (same cookie), watched like the first."""
        page = self.context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and request.resource_type in ("fetch", "document", "eventsource"):
            return  # a navigation superseding a request, or the page closing a session's channel
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def open(self, path: str = "/", page: Page | None = None) -> Page:
        page = page or self.page
        page.goto(self.base_url + path)
        page.wait_for_load_state("load")
        return page
