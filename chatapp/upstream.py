"""The wire format of OpenAI-compatible servers, read without the openai package's iterator.

An answer's body as lines and Server-Sent Events (keep-alive comments skipped, llama.cpp's
``error:`` line kept), and what the parts of an answer say: a delta's thinking, token
usage, an error's text, a Retry-After in seconds. ``chatapp.assistant`` decides what they mean.
And the one client per model server that every reply of a process shares (``client``).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import openai
from werkzeug.http import parse_date

# Where servers put a reasoning model's thinking: DeepSeek, vLLM and llama.cpp as
# reasoning_content, Ollama (and newer vLLM) as reasoning.
REASONING_FIELDS = ("reasoning_content", "reasoning")
# How servers say a conversation is longer than the model's context window: OpenAI and vLLM
# ("maximum context length"), OpenAI's error code, llama.cpp's server.
CONTEXT_LENGTH_SIGNS = ("maximum context length", "context_length_exceeded", "exceeds the available context size")

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """The process's client for this server and these settings, built once and shared.

    A new one costs ~30 ms of CPU (httpx loads the CA certificates into a new SSL context,
    whatever the URL's scheme): a thousand replies started at once would queue behind half a
    minute of it. Its connection pool (1,000 connections) is shared safely by threads and
    greenlets; a reply closes its own stream, never the client.
    """
    key = (base_url, api_key, timeout)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(
                base_url=base_url,
                api_key=api_key,
                # The read time-out applies to each wait for data, so a model that stalls
                # mid-reply is given up after LLM_TIMEOUT too, not only one that never starts.
                timeout=openai.Timeout(timeout, connect=timeout),
                max_retries=0,  # the visitor's Retry button is the retry; a worker must not wait twice
            )
        return _clients[key]


def close_clients(base_url: str | None = None) -> None:
    """Close the shared clients (of one server, or all) and their pooled connections."""
    with _clients_lock:
        for key in [k for k in _clients if base_url is None or k[0] == base_url]:
            _clients.pop(key).close()


def post_stream(model: openai.OpenAI, request: dict[str, Any]) -> openai.Stream[Any]:
    """POST a Chat Completions request, as ``chat.completions.create`` would, with its errors.

    Not through ``create`` itself: it first walks the whole request against its typed schema
    (``maybe_transform``), ~1 ms of CPU for one message and ~6 ms with 20 messages of history,
    per reply. The request here is plain JSON already, and its body is read as it arrives
    (``chatapp.assistant``), never parsed into the package's types.
    """
    return model.post("/chat/completions", body=request, cast_to=object, stream=True, stream_cls=openai.Stream[Any])


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
    """``timeout`` or ``transport`` for the HTTP client's own errors while reading a body.

    By class name, so it holds for whichever HTTP client the installed openai uses (httpx or
    httpx2); the openai package translates only what its own iterator reads.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names or isinstance(exc, TimeoutError):
        return "timeout"
    if "RequestError" in names:
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
