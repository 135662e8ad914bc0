"""Browser tests: the real app on a free port, driven by Debian's Chromium through Playwright.

One app server and one browser serve the whole run; every test gets fresh browser contexts
(fresh cookies, so a fresh visitor). A failing test leaves a screenshot of each of its pages
under test-artifacts/browser/.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.browser.chatpage import Visitor
from tests.fake_llm import FakeLLM
from tests.helpers import ROOT
from tests.servers import AppServer, RedisServer, free_port, require_binary, streaming_gunicorn_cmd

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches Debian's chromium: Playwright cannot download its own here."""
    return {
        **browser_type_launch_args,
        "executable_path": require_binary("chromium"),
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(scope="session")
def live_server(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app under Flask's threaded server, on the suite's redis-server, offline assistant."""
    with serve_app(redis_server, tmp_path_factory) as server:
        yield server


@contextmanager
def serve_app(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app under Flask's threaded server on ``redis_server``, offline assistant."""
    port = free_port()
    env = {
        "CHATAPP_REDIS_URL": redis_server.url,
        "CHATAPP_SECRET_KEY": secrets.token_hex(32),
        "CHATAPP_RATELIMIT_ENABLED": "false",
        # A closed tab's channel is noticed at the next write: soon, so its thread is freed soon.
        "CHATAPP_SSE_KEEPALIVE": "1",
        "CHATAPP_LLM_BASE_URL": None,
        "CHATAPP_LLM_MODEL": None,
        "CHATAPP_OPEN_API": None,
        "FLASK_DEBUG": None,
    }
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port), "--host", "127.0.0.1"]
    log = tmp_path_factory.mktemp("app") / "app.log"
    with AppServer(cmd, port, env=env, cwd=ROOT, log_path=log) as server:
        yield server


@pytest.fixture
def visitors(
    browser: Browser, live_server: AppServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Visitor]]:
    """Make visitors (fresh contexts); screenshots on failure, then closes them."""
    made: list[Visitor] = []

    def make(**context_args: Any) -> Visitor:
        context_args.setdefault("viewport", {"width": 1000, "height": 760})
        context = browser.new_context(**context_args)
        context.set_default_timeout(5000)
        visitor = Visitor(context, live_server.base_url)
        made.append(visitor)
        return visitor

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for index, visitor in enumerate(made):
            for number, page in enumerate(visitor.context.pages):
                path = ARTIFACTS / f"{name}-{index}-{number}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                except Exception as exc:  # noqa: BLE001 - a screenshot must not hide the failure
                    print(f"screenshot failed: {exc}")
                else:
                    print(f"screenshot: {path}")
    for visitor in made:
        visitor.context.close()


@pytest.fixture
def visitor(visitors: Callable[..., Visitor]) -> Visitor:
    return visitors()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@contextmanager
def app_with_model(redis_server: RedisServer, fake: FakeLLM, log_dir: Path, model: str) -> Iterator[AppServer]:
    """The app under gunicorn (gthread) with the fake model, on the suite's redis-server: what a
    module's ``live_server`` overrides the offline one with when its tests need a model."""
    port = free_port()
    env = {
        "CHATAPP_REDIS_URL": redis_server.url,
        "CHATAPP_SECRET_KEY": secrets.token_hex(32),
        "CHATAPP_RATELIMIT_ENABLED": "false",
        "CHATAPP_SSE_KEEPALIVE": "1",  # a closed tab's channel frees its thread within a second
        "CHATAPP_LLM_BASE_URL": fake.base_url,
        "CHATAPP_LLM_MODEL": model,
        "CHATAPP_LLM_TIMEOUT": "10",
        "CHATAPP_OPEN_API": None,
    }
    with AppServer(streaming_gunicorn_cmd(port), port, env=env, cwd=ROOT, log_path=log_dir / "app.log") as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLM) -> Iterator[FakeLLM]:
    """The module's fake model, reset; a reply it still holds is let go after the test."""
    yield fake.reset()
    for event in fake.holds.values():
        event.set()
