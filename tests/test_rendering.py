"""The one Markdown renderer (chatapp.rendering): what it makes, and that hostile text renders inert, fast.

The browser side (no script runs, the page shows it within a second) is in
tests/browser/test_chat_view.py; this is the server's half, and its timing.
"""

from __future__ import annotations

import re
import time

import pytest

from chatapp.rendering import render_markdown

# Each is something a person or a model may send; none may come out as live HTML.
HOSTILE = {
    "script": "<script>window.__pwned = true</script>",
    "img onerror": '<img src=x onerror="window.__pwned = true">',
    "svg onload": "<svg onload=alert(1)><circle r=1></svg>",
    "iframe": '<iframe src="javascript:alert(1)"></iframe>',
    "javascript link": "[click me](javascript:alert(1))",
    "javascript link, entity-encoded": "[click](jav&#x61;script:alert(1))",
    "javascript link, mixed case and blanks": "[click](  JaVaScRiPt:alert(1))",
    "javascript autolink": "<javascript:alert(1)>",
    "data link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "vbscript": "[x](vbscript:msgbox(1))",
    "entities": "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "style tag": "<style>body{display:none}</style>",
    "html in table": "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "nested fences": "````\n```html\n<script>alert(1)</script>\n```\n````",
    "unclosed fence": "```\n<script>alert(1)</script>",
    "link title": '[x](https://example.com "onmouseover=alert(1)")',
    "attribute breakout": '[x](https://example.com/"onmouseover="alert(1))',
    "html comment": "<!-- <script>alert(1)</script> -->",
    "form": '<form action="https://evil.example"><button>Go</button></form>',
}
LIVE = re.compile(
    r"<(script|img|svg|iframe|style|form|button|object|embed|input|link|meta)\b|\son\w+\s*=|javascript:|data:|vbscript:",
    re.IGNORECASE,
)


def tags(html: str) -> list[str]:
    """The tags of the HTML, with their attributes (text between them left out)."""
    return re.findall(r"<[^>]+>", html)


def test_bold_lists_code_tables_and_links_render_as_their_elements():
    html = render_markdown(
        "**bold** and *em*\n\n- one\n- two\n\n```python\nprint('hi')\n```\n\n"
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\nSee https://example.com/page and [docs](https://docs.example.org)."
    )

    assert "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert "<ul>\n<li>one</li>" in html
    assert '<span class="code-lang">python</span>' in html
    assert "<pre><code>print('hi')\n</code></pre>" in html
    assert "<table>" in html and '<td class="align-right">2</td>' in html  # no inline style: the CSP
    assert '<a href="https://example.com/page" rel="noopener noreferrer nofollow">' in html
    assert '<a href="https://docs.example.org" rel="noopener noreferrer nofollow">docs</a>' in html


def test_user_line_breaks_are_kept():
    assert render_markdown("first line\nsecond line") == "<p>first line<br>\nsecond line</p>\n"


def test_an_image_is_a_link_to_it_named_by_its_alt_text():
    html = render_markdown("![a diagram](https://example.com/d.png)")

    assert html == '<p><a href="https://example.com/d.png" rel="noopener noreferrer nofollow">a diagram</a></p>\n'


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markdown_renders_inert(text):
    html = render_markdown(text)

    live = [tag for tag in tags(html) if LIVE.search(tag)]
    assert live == [], html
    assert all(tag.split()[0].strip("</>") in ALLOWED for tag in tags(html)), html


ALLOWED = {"p", "br", "strong", "em", "s", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "div", "span"}
ALLOWED |= {"table", "thead", "tbody", "tr", "th", "td", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}


def test_raw_html_shows_as_the_text_typed():
    assert render_markdown("<b>hi</b> & <script>x</script>") == (
        "<p>&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;</p>\n"
    )


def test_a_code_fence_language_is_text_not_markup():
    html = render_markdown('```"><img src=x onerror=alert(1)>\ncode\n```')

    assert "<img" not in html and "&lt;img" in html


def timed(text: str) -> tuple[float, str]:
    started = time.perf_counter()
    html = render_markdown(text + f"\n\n{time.perf_counter_ns()}")  # never from the cache
    return time.perf_counter() - started, html


def test_ten_thousand_nested_quotes_render_fast_and_keep_every_character():
    text = "> " * 10_000 + "the bottom\n\n**after it**"

    seconds, html = timed(text)

    assert seconds < 1, f"{seconds:.3f} s"
    assert html.count("<blockquote>") == 12  # the rest of the markers are shown as text
    assert "the bottom" in html and html.count("&gt;") == 10_000 - 12
    assert "<strong>after it</strong>" in html  # the message around it is still Markdown


def test_lists_nested_past_the_limit_show_the_whole_message_as_text():
    text = "".join("  " * depth + f"- item {depth}\n" for depth in range(40))

    html = render_markdown(text)

    assert "<li>" not in html and "item 39" in html and html.startswith("<p>- item 0<br>")


def test_deep_quotes_within_the_limit_are_quotes():
    assert render_markdown("> > > deep").count("<blockquote>") == 3


def test_a_one_megabyte_code_block_renders_within_a_second():
    body = "x = '<tag onerror=alert(1)>' & y\n" * 32_000  # 1 MB
    text = f"```js\n{body}```"
    assert len(text) > 1_000_000

    seconds, html = timed(text)

    assert seconds < 1, f"{seconds:.3f} s"
    assert html.startswith('<div class="code-block"><div class="code-head"><span class="code-lang">js</span>')
    assert "<tag" not in html and html.count("&lt;tag onerror=alert(1)&gt;") == 32_000


def test_the_whole_hostile_corpus_in_one_message_renders_within_a_second():
    text = "\n\n".join([*HOSTILE.values(), "> " * 10_000 + "q", "```\n" + "a" * 1_000_000 + "\n```"])

    seconds, html = timed(text)

    assert seconds < 1, f"{seconds:.3f} s"
    assert not [tag for tag in tags(html) if LIVE.search(tag)]


def test_nothing_renders_as_nothing():
    assert render_markdown("") == "" and render_markdown(None) == ""
