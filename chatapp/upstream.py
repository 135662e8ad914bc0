"""The wire format of OpenAI-compatible servers, read without the openai package's iterator.

An answer's body as lines and Server-Sent Events (keep-alive comments skipped, llama.cpp's
``error:`` line kept), and what the parts of an answer say: a delta's thinking, token
usage, an error's text, a Retry-After in seconds. ``chatapp.assistant`` decides what they mean.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from werkzeug.http import parse_date

# Where servers put a reasoning model's thinking: DeepSeek, vLLM and llama.cpp as
# reasoning_content, Ollama (and newer vLLM) as reasoning.
REASONING_FIELDS = ("reasoning_content", "reasoning")
# How servers say a conversation is longer than the model's context window: OpenAI and vLLM
# ("maximum context length"), OpenAI's error code, llama.cpp's server.
CONTEXT_LENGTH_SIGNS = ("maximum context length", "context_length_exceeded", "exceeds the available context size")

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """A response body's lines (any of CRLF, CR, LF) as the bytes arrive."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        held = b"\r" if buffer.endswith(b"\r") else b""  # maybe the first half of a CRLF
        *complete, rest = _LINE_BREAK.split(buffer[: len(buffer) - len(held)])
        buffer = rest + held
        for line in complete:
            yield line.decode("utf-8")
    if buffer:
        yield buffer.decode("utf-8")


def sse_events(body_lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-Sent Events as (event name, data); comments (keep-alives) are skipped.

    llama.cpp's server reports a failure mid-stream as an ``error: {...}`` line, a field the
    SSE standard would ignore: it comes out as an ``error`` event.
    """
    event = ""
    data: list[str] = []
    for line in body_lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "error":
            event, data = "error", [value]
    if data:
        yield event or "message", "\n".join(data)


def http_failure(exc: BaseException) -> str | None:
    """``timeout`` or ``transport`` for a failure of the connection itself (chatapp.model_http)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "transport"
    return None


def reasoning(delta: dict[str, Any]) -> str:
    """A delta's (or message's) thinking, from whichever field the server uses."""
    for field in REASONING_FIELDS:
        value = delta.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def error_text(exc: Exception) -> str:
    """An upstream error's message and body, lower-cased, to look for what it is about."""
    body = getattr(exc, "body", None)
    return f"{getattr(exc, 'message', exc)} {json.dumps(body, default=str)}".lower()


def says_context_too_long(exc: Exception) -> bool:
    """Whether an upstream error is about the conversation not fitting the context window."""
    text = error_text(exc)
    return any(sign in text for sign in CONTEXT_LENGTH_SIGNS)


def retry_after(value: str | None) -> int | None:
    """Retry-After in seconds, from seconds or an HTTP date; None when missing or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    when = parse_date(value)
    if when is None:
        return None
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def usage(counts: Any) -> dict[str, int]:
    """The token counts of an answer's ``usage`` object (those that are whole numbers)."""
    raw = counts if isinstance(counts, dict) else {}
    return {
        k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens", "total_tokens") if isinstance(raw.get(k), int)
    }
