"""The shared page and its JSON against hostile Markdown: whatever a message holds comes out inert
(no element or attribute that runs script, no javascript: or data: URL), and each renders in
well under a second, a 1 MB code block and 10,000 nested quotes included.

The corpus is the chat view's (tests/test_rendering.py; the page renders through the same
renderer, chatapp.services.shares.render_message_html) plus cases of this page's own: deep
nesting and a 1 MB code block each as one stored message.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from chatapp.storage import get_store, make_message
from tests.helpers import Visitor
from tests.test_rendering import HOSTILE as CHAT_VIEW_CORPUS

HOSTILE = {f"chat view: {name}": text for name, text in CHAT_VIEW_CORPUS.items()} | {
    "script": "<script>window.pwned = 1</script>",
    "img onerror": '<img src=x onerror="window.pwned = 1">',
    "javascript link": '[click me](javascript:window.pwned=1) and <a href="javascript:window.pwned=1">raw</a>',
    "data link": "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "autolink": "<javascript:window.pwned=1>",
    "entities": "&lt;script&gt;window.pwned=1&lt;/script&gt; &#x3C;img src=x onerror=alert(1)&#x3E; &amp;amp;",
    "svg": '<svg onload="window.pwned=1"><circle r="5"/></svg>',
    "iframe": '<iframe src="javascript:window.pwned=1"></iframe>',
    "style": '<style>body { display: none }</style><div style="background:url(javascript:x)">x</div>',
    "nested fences": (
        "````\n```\n<script>window.pwned=1</script>\n```\n````\n~~~js\n</code></pre><script>x</script>\n~~~"
    ),
    "html in code span": "`<img src=x onerror=alert(1)>`",
    "quoted attribute breakout": '"><script>window.pwned=1</script><a title="',
    "deep quotes": ">" * 10_000 + " deep",
    "deep lists": "- " * 5_000 + "deep",
    "huge code block": "```\n" + ("<script>x</script> " * 55_000)[:1_048_576] + "\n```",
}
RUNS_SCRIPT_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta", "base", "form"}


class Inspector(HTMLParser):
    """Every start tag and attribute inside the shared messages."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth or ("class", "msg-text msg-html") in attrs:
            self.depth += 1 if tag not in ("br", "hr", "img", "input") else 0
            self.tags.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in ("br", "hr", "img", "input"):
            self.depth -= 1


def assert_inert(html: str) -> None:
    found = Inspector()
    found.feed(html)
    assert found.tags, "no message found on the page"
    for tag, attrs in found.tags:
        assert tag not in RUNS_SCRIPT_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name != "style" or "url(" not in (value or ""), (tag, name, value)
            if name in ("href", "src", "action", "formaction", "xlink:href"):
                assert (value or "").strip().lower().startswith(("http:", "https:", "mailto:", "#", "/")), value


@pytest.fixture
def shared(app):
    """The token of a snapshot link to a session holding the whole corpus, one message each."""
    owner = Visitor(app)
    sid = owner.create(display_name="<script>window.pwned=1</script>")["session_id"]
    with app.app_context():  # the store directly: the 1 MB message is over the API's message limit
        get_store().append_messages(sid, [make_message("assistant", text) for text in HOSTILE.values()], limited=False)
    response = owner.request("POST", f"/api/sessions/{sid}/shares", json={"expires_in": 3600, "mode": "live"})
    return response.get_json()["url"].rsplit("/", 1)[1]


def test_the_page_renders_the_corpus_inert_and_within_a_second(app, shared):
    client = app.test_client()

    started = time.perf_counter()
    page = client.get(f"/share/{shared}")
    took = time.perf_counter() - started

    assert page.status_code == 200
    assert took < 1.0, f"{took:.2f} s"
    html = page.get_data(as_text=True)
    assert_inert(html)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html  # the title, as text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")


def test_the_json_html_of_each_message_is_inert_and_the_text_is_as_written(app, shared):
    started = time.perf_counter()
    messages = app.test_client().get(f"/api/share/{shared}").get_json()["messages"]
    took = time.perf_counter() - started

    assert took < 1.0, f"{took:.2f} s"
    assert [m["content"] for m in messages] == list(HOSTILE.values())
    for message in messages:
        assert_inert(f'<div class="msg-text msg-html">{message["html"]}</div>')
