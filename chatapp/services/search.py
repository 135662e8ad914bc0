"""Search across a user's conversations: the query syntax, snippets, and the answer.

A query is words (``café`` finds ``Cafe``), ``"quoted phrases"`` (words in a row) and
``prefix*`` (any word it begins); a session matches when it holds all of them, each in its
title, name, description or any of its messages. Sessions whose title, name or description
hold more of them come first, then those whose messages hold them more often, then the most
recently active. Each result carries up to three snippets: about 160 characters of a message
around a hit, with the hits' offsets, for a client to mark as text (never as HTML).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from werkzeug.exceptions import BadRequest

from chatapp.schemas.search import QUERY_MAX_LENGTH
from chatapp.storage import get_store
from chatapp.storage.search import Clause, Hit
from chatapp.storage.search_engine import engine_of
from chatapp.storage.search_text import searchable_pattern, words, words_at

SNIPPET_CHARS = 160
ELLIPSIS = "…"
PIECE = re.compile(r'"([^"]*)"|([^\s"]+)')


def parse(q: str) -> list[Clause]:
    """The clauses of a query, or a 400 saying what is wrong with it."""
    if not q.strip():
        raise BadRequest("Give some words to search for.")
    if len(q) > QUERY_MAX_LENGTH:
        raise BadRequest(f"A search may be at most {QUERY_MAX_LENGTH} characters.")
    if q.count('"') % 2:
        raise BadRequest('Close the quoted phrase: a query holds pairs of ".')
    if not re.fullmatch(searchable_pattern(), q):
        raise BadRequest("Search for at least one word of letters or digits (* may only end a word).")
    clauses: list[Clause] = []
    for found in PIECE.finditer(q):
        text = found.group(1) if found.group(1) is not None else found.group(2)
        found_words = tuple(words(text))
        if not found_words:
            continue
        clause = Clause(found_words, prefix=text.rstrip().endswith("*"))
        if clause not in clauses:
            clauses.append(clause)
    if not clauses:  # (the pattern lets no such query through)
        raise BadRequest("Search for at least one word of letters or digits (* may only end a word).")
    return clauses


def _spans(text: str, clauses: list[Clause]) -> list[tuple[int, int]]:
    """Where each clause is in ``text``: (start, end) in code points, in order, merged."""
    found = words_at(text)
    spans: list[tuple[int, int]] = []
    for clause in clauses:
        n = len(clause.words)
        for i in range(len(found) - n + 1):
            inner = all(found[i + k][0] == clause.words[k] for k in range(n - 1))
            last = found[i + n - 1][0]
            if inner and (last.startswith(clause.words[-1]) if clause.prefix else last == clause.words[-1]):
                spans.append((found[i][1], found[i + n - 1][2]))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, clauses: list[Clause], width: int = SNIPPET_CHARS) -> tuple[str, list[list[int]]]:
    """About ``width`` characters of ``text`` around its first hit (cut at spaces, … where
    cut), and the hits in it as [start, end) offsets into the snippet."""
    spans = _spans(text, clauses)
    if len(text) <= width:
        return text, [[s, e] for s, e in spans]
    first_start, first_end = spans[0] if spans else (0, 0)
    start = max(0, first_start - max(0, width - (first_end - first_start)) // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start, first_start)
        if space != -1:
            start = space + 1
    if end < len(text):
        space = text.rfind(" ", max(first_end, start), end)
        if space != -1:
            end = space
    lead = ELLIPSIS if start > 0 else ""
    shown = lead + text[start:end].strip(" ") + (ELLIPSIS if end < len(text) else "")
    shift = len(lead) - start - (len(text[start:end]) - len(text[start:end].lstrip(" ")))
    # A hit the cut goes through is marked as far as it is shown.
    first, last = (
        start + len(text[start:end]) - len(text[start:end].lstrip(" ")),
        start + len(text[start:end].rstrip(" ")),
    )
    highlights = [[max(s, first) + shift, min(e, last) + shift] for s, e in spans if s < last and e > first]
    return shown, highlights


def _result(hit: Hit, clauses: list[Clause]) -> dict[str, Any]:
    session = hit.session
    snippets = []
    for index, message in hit.snippets:
        content = message.get("content")
        text, highlights = snippet(content if isinstance(content, str) else "", clauses)
        snippets.append(
            {"message_index": index, "role": message.get("role", ""), "text": text, "highlights": highlights}
        )
    return {
        "session_id": session["session_id"],
        "title": session.get("display_name") or session.get("title"),
        "description": session.get("description"),
        "persona": session["persona"],
        "archived": bool(session.get("archived")),
        "last_activity": session["last_activity"],
        "message_count": session.get("message_count", 0),
        "user_id": session["user_id"],
        "snippets": snippets,
    }


def _day_ms(day: date | None, later: int = 0) -> int | None:
    """The start of ``day`` (or of the day ``later`` days after it), UTC, in ms."""
    if day is None:
        return None
    return int(datetime.combine(day + timedelta(days=later), time.min, UTC).timestamp() * 1000)


def search(query: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """Run a parsed API query for a visitor (``owner``: their sessions only) or an operator."""
    clauses = parse(query["q"])
    page = get_store().search(
        clauses,
        user_id=owner if owner is not None else query.get("user_id"),
        persona=query.get("persona"),
        archived=query.get("archived"),
        from_ms=_day_ms(query.get("from_")),
        to_ms=_day_ms(query.get("to"), 1),
        offset=query["offset"],
        limit=query["limit"],
    )
    end = query["offset"] + len(page.hits)
    return {
        "results": [_result(hit, clauses) for hit in page.hits],
        "count": page.total,
        "limit": query["limit"],
        "offset": query["offset"],
        "next_offset": end if end < page.total else None,
        "engine": engine_of(current_app),
    }
