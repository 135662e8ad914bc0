"""Take the README's screenshots: the chat, both modals and search, light and dark, on a desktop
and a phone.

Runs the real app (Flask's server on a throwaway redis-server, with the tests' fake model
answering in Markdown) and Debian's Chromium, like the browser tests do:

    .venv/bin/python docs/screenshots/take.py

and writes chat-, new-session-, sessions- and search-{light,dark}.png and phone-chat- and
phone-sessions-{light,dark}.png next to this file.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_llm import FakeLLM  # noqa: E402
from tests.servers import AppServer, RedisServer, free_port  # noqa: E402

LISBON = (
    "Happily! Three unhurried days:\n\n"
    "1. **Alfama**: the castle at opening time, then *fado* in the evening\n"
    "2. **Belém**: the tower, the monastery and a *pastel de nata*\n"
    "3. **Sintra**: a day trip by train from Rossio"
)
PRINTER = (
    "Let's check what the computer sees first:\n\n"
    "```sh\nlpstat -p -d\n```\n\n"
    "| it says | what it means |\n|---|---|\n| `idle` | ready: try printing again |\n"
    "| `disabled` | paused: `cupsenable <printer>` |"
)
PRINTER_FIRST = "Is the printer on the same Wi-Fi network as your computer?"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 960, "height": 640}
PHONE = {"width": 390, "height": 844}


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()  # (on a phone, Enter adds a line)
    expect(page.locator("#messages .msg-user .msg-text").last).to_have_text(text)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def create(page: Page, name: str, persona: str) -> None:
    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_label("Display Name").fill(name)
    page.get_by_label("Persona").select_option(label=persona)
    page.get_by_role("button", name="Create Session").click()
    expect(page.get_by_role("dialog", name="New session")).to_be_hidden()


def shoot(browser: Browser, base_url: str, scheme: str, model: FakeLLM) -> None:
    context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme, reduced_motion="reduce")
    page = context.new_page()
    page.goto(base_url)
    model.reset(pieces=[LISBON])
    send(page, "Hi! Can you help me plan a short trip to Lisbon?")
    create(page, "Printer trouble", "Technical Support")
    page.get_by_role("button", name="Keep").click()
    expect(page.get_by_text("Pinned: kept until you unpin it.")).to_be_visible()
    model.reset(pieces=[PRINTER_FIRST])
    send(page, "My printer says it is offline, but it is switched on.\nIt is connected over Wi-Fi.")
    model.reset(pieces=[PRINTER])
    page.get_by_role("button", name="Regenerate").click()  # a second version: "2 / 2"
    expect(page.locator("#messages .msg-version-count").last).to_have_text("2 / 2")
    page.locator("body").focus()
    page.screenshot(path=HERE / f"chat-{scheme}.png")

    page.get_by_role("button", name="New", exact=True).click()
    page.get_by_label("Display Name").fill("Evening journal")
    page.get_by_label("Persona").select_option(label="Mental Health Nurse")
    page.screenshot(path=HERE / f"new-session-{scheme}.png")
    page.keyboard.press("Escape")

    dialog = open_sessions(page)
    page.screenshot(path=HERE / f"sessions-{scheme}.png")
    page.keyboard.press("Escape")

    page.keyboard.press("Control+k")
    page.keyboard.type("lisbon trip")
    expect(page.get_by_role("dialog", name="Search your conversations").locator("mark").first).to_be_visible()
    page.screenshot(path=HERE / f"search-{scheme}.png")
    phone = browser.new_context(
        viewport=PHONE, color_scheme=scheme, reduced_motion="reduce", is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    page.goto(base_url)
    send(page, "What should I pack for a week of hiking in the Azores?")
    for name, persona in (
        ("Short story: the lighthouse", "Creative Writer"),
        ("Router keeps dropping", "Technical Support"),
    ):
        create(page, name, persona)
    send(page, "It drops every evening around eight.")
    page.locator("body").focus()
    page.screenshot(path=HERE / f"phone-chat-{scheme}.png")
    dialog = open_sessions(page)
    dialog.locator(".session-row").filter(has_text="lighthouse").get_by_role("button", name="Pin").click()
    expect(dialog.locator(".session-group-label").first).to_have_text("Pinned")
    page.wait_for_timeout(6500)  # the Undo offer goes
    page.screenshot(path=HERE / f"phone-sessions-{scheme}.png")
    phone.close()
    context.close()


def open_sessions(page: Page):
    page.get_by_role("button", name="Sessions", exact=True).click()
    dialog = page.get_by_role("dialog", name="Your sessions")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".session-row").first).to_be_visible()
    return dialog


def main() -> None:
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis, FakeLLM() as model:
        port = free_port()
        env = {
            "CHATAPP_REDIS_URL": redis.url,
            "CHATAPP_SECRET_KEY": secrets.token_hex(32),
            "CHATAPP_RATELIMIT_ENABLED": "false",
            "CHATAPP_LLM_BASE_URL": model.base_url,
            "CHATAPP_LLM_MODEL": "a-local-model",
        }
        cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port)]
        with AppServer(cmd, port, env=env, cwd=ROOT, log_path=Path(tmp) / "app.log") as app, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            for scheme in ("light", "dark"):
                shoot(browser, app.base_url, scheme, model)
            browser.close()
    for png in sorted(HERE.glob("*.png")):
        print(f"{png.relative_to(ROOT)}: {png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
