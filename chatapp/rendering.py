"""Messages as HTML: the one Markdown renderer, safe by construction.

Everything a message shows (the chat page, the API's ``html`` field, the live channel's
events, and later a share page or an export) comes from ``render_markdown``, so they agree.
CommonMark plus tables, strikethrough and autolinks (markdown-it-py, with linkify-it-py for
bare URLs); raw HTML in the text is never passed through (markdown-it's ``html`` option is
off, so ``<script>`` comes out as the text ``&lt;script&gt;``). The result then goes through
an allow-list sanitizer (nh3, the Rust ammonia crate): only the tags and attributes Markdown
makes survive, links may only be http, https or mailto (``javascript:`` and ``data:`` are
dropped) and get ``rel="noopener noreferrer nofollow"``. A fenced code block carries its
language as a label (text); the page adds a Copy button to it.

Rendering is linear in the text: a 1 MB code block or 10,000 nested quotes take well under a
second (quote markers past ``QUOTE_DEPTH`` on a line are shown as text, and a message that still nests
deeper than markdown-it's ``MAX_NESTING`` (lists in lists) is shown as plain text, every
character of it, rather than as Markdown that lost its tail).
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

MAX_NESTING = 20  # blocks inside blocks (quotes in quotes, lists in lists): deeper stays text
QUOTE_DEPTH = 12  # quote markers on a line that quote; more are shown as text
DEEP_QUOTE = re.compile(rf"^((?: {{0,3}}>){{{QUOTE_DEPTH}}})((?: {{0,3}}>)+)", re.MULTILINE)
LINK_REL = "noopener noreferrer nofollow"
TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    "div", "span",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
}
ALIGNED = {"align-left", "align-center", "align-right"}
CLASSES = {"div": {"code-block", "code-head"}, "span": {"code-lang"}, "th": ALIGNED, "td": ALIGNED}
URL_SCHEMES = {"http", "https", "mailto"}
# markdown-it aligns table cells with style="text-align:..."; the page's CSP refuses inline
# styles, so the alignment becomes a class the stylesheet knows.
ALIGNMENT = re.compile(r' style="text-align:(left|center|right)"')
CACHED = 2048  # rendered messages kept per process: a history read renders each message once


def _fence(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """A fenced block: its language as a text label above the code (no class from user input)."""
    token = tokens[idx]
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    label = f'<span class="code-lang">{escape(language[:40])}</span>' if language else ""
    code = escape(token.content)
    return f'<div class="code-block"><div class="code-head">{label}</div><pre><code>{code}</code></pre></div>\n'


def _code_block(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """An indented code block: shown like a fence without a language."""
    code = escape(tokens[idx].content)
    return f'<div class="code-block"><div class="code-head"></div><pre><code>{code}</code></pre></div>\n'


def _image(self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """An image as a link to it, named by its alt text: the page loads nothing from elsewhere
    (the CSP would refuse it anyway), and a reader still sees what the image was."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = escape(str(token.attrGet("src") or ""))
    return f'<a href="{src}">{escape(alt)}</a>'


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": True, "typographer": False, "maxNesting": MAX_NESTING, "breaks": True},
    )
    md.enable(["table", "strikethrough", "linkify"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _code_block)
    md.add_render_rule("image", _image)
    tokenize = md.block.tokenize

    def tokenize_noting_depth(state: Any, start: int, end: int) -> None:
        # markdown-it drops what lies deeper than maxNesting; note it, so the text is kept.
        if state.level >= MAX_NESTING:
            state.env["too_deep"] = True
        tokenize(state, start, end)

    md.block.tokenize = tokenize_noting_depth  # type: ignore[method-assign,assignment]
    return md


_md = _parser()


def _sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def _as_text(text: str) -> str:
    """Text too deeply nested for Markdown: shown as typed, line breaks kept."""
    return "<p>" + escape(text).replace("\n", "<br>\n") + "</p>"


def _shallow_quotes(text: str) -> str:
    """Quote markers past the nesting limit as the text ``>``: a line quoted 10,000 deep shows
    QUOTE_DEPTH quotes and the rest of its markers, and the message around it stays Markdown."""
    if text.count(">") <= QUOTE_DEPTH:
        return text
    return DEEP_QUOTE.sub(lambda m: m.group(1) + m.group(2).replace(">", "\\>"), text)


@lru_cache(maxsize=CACHED)
def _render(text: str) -> str:
    env: dict[str, Any] = {}
    html = _md.render(_shallow_quotes(text), env)
    if env.get("too_deep"):
        html = _as_text(text)
    return _sanitize(ALIGNMENT.sub(r' class="align-\1"', html))


def render_markdown(text: Any) -> Markup:
    """A message's text as safe HTML (Markup, so Jinja inserts it as is)."""
    if not isinstance(text, str) or not text:
        return Markup("")
    return Markup(_render(text))  # noqa: S704 - sanitized by nh3 against an allow-list (_sanitize)
