"""The web page without a browser: the no-script forms, what the cookie remembers, the store
being down, and the static rules the page lives by (CSP-safe templates, size budget)."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chatapp.storage import get_store
from tests.servers import free_port, no_retry

ROOT = Path(__file__).resolve().parents[1]
MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta"
    return match.group(1)


class Browserless:
    """A visitor driving the page with the test client: GET the page, post its forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.html = ""

    def open(self, path: str = "/") -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        self.html = response.get_data(as_text=True)
        return self.html

    @property
    def session_id(self) -> str:
        match = re.search(r'data-session-id="([^"]*)"', self.html)
        assert match
        return match.group(1)

    def create(self, expect: int = 303, json: bool = False, **form: str):
        headers = {"Accept": "application/json"} if json else {}
        response = self.client.post("/sessions", data={"csrf_token": csrf_of(self.html), **form}, headers=headers)
        assert response.status_code == expect, response.get_data(as_text=True)
        return response


@pytest.fixture
def ui(app: Flask) -> Browserless:
    return Browserless(app.test_client())


def test_first_visit_assigns_visitor_and_greets_with_the_default_persona_storing_nothing(
    ui: Browserless, app: Flask
) -> None:
    html = ui.open()
    user_id = re.search(r'<code id="user-id">(user_[^<]+)</code>', html).group(1)
    assert "Hello! I&#39;m your assistant. What would you like to talk about?" in html
    assert 'data-assistant="offline"' in html
    first = ui.session_id
    assert first.startswith("session_")
    assert f'data-unwritten-session-id="{first}"' in html
    ui.open()
    assert ui.session_id == first, "a reload must not start another session"
    with app.app_context():
        assert get_store().list_sessions(user_id=user_id)[1] == 0, "a page view stores nothing"

    # The first message stores the session, under an id of its own, and the page shows it from then on.
    sent = ui.client.post(
        f"/api/sessions/{first}/messages", json={"content": "hello"}, headers={"X-CSRFToken": csrf_of(html)}
    )

    assert sent.status_code == 201
    stored = sent.get_json()["session_id"]
    assert stored != first and stored.startswith("session_user-")
    with app.app_context():
        sessions, total = get_store().list_sessions(user_id=user_id)
    assert total == 1 and sessions[0]["session_id"] == stored and sessions[0]["persona"] == "default"
    html = ui.open()
    assert ui.session_id == stored and "data-unwritten-session-id" not in html and "hello" in html


def test_new_session_form_posts_and_redirects_without_javascript(ui: Browserless) -> None:
    ui.open()
    first = ui.session_id
    response = ui.create(display_name="  Night shift  ", persona="mental_health_nurse")
    assert response.headers["Location"].startswith("/sessions/session_")
    html = ui.open(response.headers["Location"])
    assert ui.session_id != first
    assert '<span id="session-name">Night shift</span>' in html
    assert "Hi, I&#39;m here to listen. How are you feeling today?" in html
    listed = html.split('id="sessions-list"', 1)[1].split("<template", 1)[0]  # not the row <template>
    assert listed.count('class="session-item"') == 2
    assert f'data-session-id="{ui.session_id}" aria-current="true"' in html


def test_new_session_form_answers_json_for_fetch(ui: Browserless) -> None:
    ui.open()
    data = ui.create(expect=201, json=True, display_name="", persona="technical_support").get_json()
    assert data["session"]["display_name"] is None
    assert data["persona"]["name"] == "Technical Support"
    assert data["persona"]["greeting"].startswith("Hi, I'm technical support.")
    assert "system_prompt" not in data["persona"]
    ui.open()
    assert ui.session_id == data["session"]["session_id"], "the new session becomes the current one"


@pytest.mark.parametrize(
    ("form", "field", "shown"),
    [
        ({"display_name": "Mine", "persona": "pirate"}, "persona", "Choose one of the listed personas."),
        ({"display_name": "x" * 101, "persona": "default"}, "display_name", "Longer than maximum length 100."),
    ],
)
def test_invalid_new_session_form_keeps_what_was_typed(ui: Browserless, form: dict, field: str, shown: str) -> None:
    ui.open()
    before = ui.session_id
    response = ui.client.post("/sessions", data={"csrf_token": csrf_of(ui.html), **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert shown in html
    assert '<dialog id="new-dialog" class="modal" aria-labelledby="new-title" closedby="any" open>' in html
    assert f'value="{form["display_name"]}"' in html
    assert 'aria-invalid="true"' in html
    json_answer = ui.client.post(
        "/sessions", data={"csrf_token": csrf_of(ui.html), **form}, headers={"Accept": "application/json"}
    )
    assert json_answer.status_code == 422
    assert field in json_answer.get_json()["error"]["fields"]
    ui.open()
    assert ui.session_id == before, "nothing was created"


def test_forms_need_the_csrf_token(ui: Browserless) -> None:
    ui.open()
    assert ui.client.post("/sessions", data={"persona": "default"}).status_code == 400
    assert ui.client.post(f"/sessions/{ui.session_id}/switch").status_code == 400


def test_switch_is_remembered_across_reloads(ui: Browserless) -> None:
    ui.open()
    first = ui.session_id
    ui.create(display_name="Second")
    ui.open()
    assert ui.session_id != first
    response = ui.client.post(f"/sessions/{first}/switch", data={"csrf_token": csrf_of(ui.html)})
    assert response.status_code == 303 and response.headers["Location"] == f"/sessions/{first}"
    ui.open()
    assert ui.session_id == first
    ui.open(f"/sessions/{ui.session_id}")
    assert ui.session_id == first
    assert ui.client.get(f"/?session={first}").headers["Location"] == f"/sessions/{first}"


def test_a_visitor_cannot_open_or_switch_to_another_visitors_session(app: Flask) -> None:
    alice, mallory = Browserless(app.test_client()), Browserless(app.test_client())
    alice.open()
    alice.create(display_name="Alice only")
    alice.open()
    secret = alice.session_id
    for address in (f"/sessions/{secret}", "/sessions/session_nobody_1700000000_00aaaaaaaaaa", "/sessions/nonsense"):
        missing = mallory.client.get(address)
        assert missing.status_code == 404
        page = missing.get_data(as_text=True)
        assert "Session not found" in page and "Alice only" not in page
    html = mallory.open()
    assert mallory.session_id != secret
    assert "Alice only" not in html
    response = mallory.client.post(
        f"/sessions/{secret}/switch", data={"csrf_token": csrf_of(html)}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 404


def test_markup_in_names_and_messages_is_escaped(ui: Browserless, app: Flask) -> None:
    ui.open()
    ui.create(display_name=MARKUP[:100])
    ui.open()
    token = csrf_of(ui.html)
    response = ui.client.post(
        f"/api/sessions/{ui.session_id}/messages", json={"content": MARKUP}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201
    html = ui.open()
    assert "<img src=x" not in html and "<script>window" not in html
    assert "&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in html


@pytest.fixture
def redis_down_app(make_app) -> Flask:
    return make_app(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        REDIS_OPTIONS={"retry": no_retry(), "socket_connect_timeout": 0.5},
    )


def test_page_renders_a_banner_when_the_store_is_down(redis_down_app: Flask) -> None:
    client = redis_down_app.test_client()
    response = client.get("/")
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "The session store is unavailable right now" in html
    assert 'id="store-banner" class="banner" role="alert">' in html
    assert 'id="user-id">user_' in html, "the header still renders"
    answer = client.post("/sessions", data={"csrf_token": csrf_of(html), "persona": "default"})
    assert answer.status_code == 503
    assert "The session could not be created" in answer.get_data(as_text=True)


# --- static rules ----------------------------------------------------------------------------------


class InlineCodeFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        for name in names:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            if "src" not in names:
                self.problems.append("<script> without src")
            self._in_script = True
        for name, value in attrs:
            if (
                name in ("href", "src", "action", "formaction")
                and value
                and value.strip().lower().startswith("javascript:")
            ):
                self.problems.append(f"javascript: URL in <{tag} {name}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script body")


@pytest.mark.parametrize("template", sorted(p.name for p in (ROOT / "templates").glob("*.html")))
def test_templates_have_no_inline_scripts_styles_or_handlers(template: str) -> None:
    finder = InlineCodeFinder()
    finder.feed((ROOT / "templates" / template).read_text(encoding="utf-8"))
    assert finder.problems == []


def test_rendered_page_has_no_inline_code_and_no_external_resources(ui: Browserless) -> None:
    html = ui.open()
    finder = InlineCodeFinder()
    finder.feed(html)
    assert finder.problems == []
    assert not re.search(r'(src|href)="(https?:)?//', html), "no CDN: everything is served by the app"


def loaded_assets(html: str) -> list[Path]:
    """Every file under static/ the page loads: its stylesheets and scripts, and the modules
    those scripts import, followed to the end."""
    static = ROOT / "static"
    found = re.findall(r'<(?:link rel="stylesheet" href|script type="module" src)="/static/([^"]+)"', html)
    todo = [static / name for name in found]
    seen: list[Path] = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        if path.suffix == ".js":
            imports = re.findall(r'^import[^"]*"(\./[^"]+)";', path.read_text(encoding="utf-8"), re.MULTILINE)
            todo += [(path.parent / name).resolve() for name in imports]
    return seen


def test_the_page_loads_at_most_120_kb_of_script_and_style_compressed_from_this_server(ui: Browserless) -> None:
    html = ui.open()
    assets = loaded_assets(html)
    names = {path.name for path in assets}

    compressed = sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in assets)

    assert {"app.css", "main.js", "chat.js", "conversation.js", "render.js", "stream.js"} <= names
    assert set((ROOT / "static").rglob("*.js")) <= set(assets), "every script is one the page loads"
    assert 0 < compressed <= 120 * 1024, f"{compressed} bytes compressed"
    print(f"JS + CSS the page loads: {compressed} bytes gzipped ({len(assets)} files)")


def test_script_never_inserts_html_but_the_servers_sanitized_rendering() -> None:
    """The one HTML sink: a message's `html`, rendered and sanitized by chatapp/rendering.py."""
    allowed = "text.innerHTML = message.html;"
    scripts = sorted((ROOT / "static" / "js").rglob("*.js"))
    assert scripts, "no scripts under static/js/"
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        if script.name == "render.js":
            assert source.count(allowed) == 1
            source = source.replace(allowed, "")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{sink} in {script.relative_to(ROOT)}"


def test_readme_shows_the_screenshots_of_chat_and_both_modals_light_and_dark() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for view in ("chat", "new-session", "sessions", "phone-chat", "phone-sessions"):
        for scheme in ("light", "dark"):
            path = f"docs/screenshots/{view}-{scheme}.png"
            assert f"]({path})" in readme
            assert (ROOT / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
