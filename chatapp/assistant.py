"""The assistant's replies: an offline backend, or any OpenAI-compatible Chat Completions server.

A reply is a ``Reply``: iterate it for ``(TEXT, piece)`` pairs as the model produces them
(``(REASONING, piece)`` for a reasoning model's thinking, not part of the text), then read
its ``metadata``. A reply is finished only when the model says so (a ``finish_reason``);
one the token limit cut is finished but ``truncated``. Failures raise HTTP errors whose
description tells a person what to do: ``UpstreamError`` (502) and ``UpstreamTimeout``
(504), whose ``reason`` says why a reply is incomplete, ``UpstreamBusy`` (503, Retry-After)
and ``ContextTooLong`` (413). The views turn them into a JSON error or an SSE ``error``
event. Nothing here touches storage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask
from werkzeug.exceptions import BadGateway, GatewayTimeout, RequestEntityTooLarge, ServiceUnavailable

from chatapp import model_http, upstream
from chatapp.personas import Persona
from chatapp.settings import hint_offline
from chatapp.storage import make_message

log = logging.getLogger(__name__)

OFFLINE_MODEL = "offline"
OFFLINE_REPLY = (
    "I'm offline: no language model is connected to this chat right now, so I can't answer. "
    "Your message is saved; please try again later."
)
SAVED = "Your message is saved; press Retry to ask again."

TEXT = "text"  # a piece of the reply's text
REASONING = "reasoning"  # a piece of a reasoning model's thinking, kept apart from the text

# Why a reply stopped before the model finished it (``metadata.incomplete_reason``).
ENDED_UNFINISHED = "no_finish_reason"  # the stream ended without a finish_reason
FAILED_MID_REPLY = "upstream_error"  # the server reported an error in the stream
CONNECTION_LOST = "connection_lost"  # the connection broke off mid-reply
SILENT = "timeout"  # nothing arrived for CHATAPP_LLM_TIMEOUT
PAST_DEADLINE = "deadline"  # the reply went on past CHATAPP_LLM_MAX_SECONDS


class UpstreamError(BadGateway):
    """The model server failed or could not be reached."""

    outcome = "error"
    reason = FAILED_MID_REPLY

    def __init__(self, description: str | None = None, reason: str | None = None) -> None:
        super().__init__(description)
        self.reason = reason or self.reason


class UpstreamTimeout(GatewayTimeout):
    """The model server did not answer (or stopped answering) within CHATAPP_LLM_TIMEOUT, or
    did not finish within CHATAPP_LLM_MAX_SECONDS."""

    outcome = "timeout"
    reason = SILENT

    def __init__(self, description: str | None = None, reason: str | None = None) -> None:
        super().__init__(description)
        self.reason = reason or self.reason


class UpstreamBusy(ServiceUnavailable):
    """The model server is busy, over a quota or loading (its 429 or 503): wait and ask again.

    ``retry_after`` is the upstream's Retry-After in seconds, passed on (None if it sent none).
    """

    outcome = "error"

    def __init__(self, description: str, retry_after: int | None) -> None:
        super().__init__(description, retry_after=retry_after)


class ContextTooLong(RequestEntityTooLarge):
    """The conversation does not fit the model's context window: asking again will not help."""

    outcome = "error"


UPSTREAM_ERRORS = (UpstreamError, UpstreamTimeout, UpstreamBusy, ContextTooLong)
TOO_LONG = (
    "This conversation is too long for the language model: with the earlier messages it no longer "
    "fits in what the model can read at once (its context window), so asking again will not help. "
    "Your message is saved. Start a new session to go on, or send a shorter message; an operator "
    "can lower CHATAPP_LLM_MAX_HISTORY or use a model with a longer context."
)


def offline_reply() -> dict[str, Any]:
    """A plain reply saying that nothing is connected (to the visitor)."""
    hint_offline()
    return make_message("assistant", OFFLINE_REPLY, {"offline": True})


def is_configured(app: Flask) -> bool:
    """True when a language model is configured; False means the offline backend answers."""
    return bool(app.config.get("LLM_BASE_URL") and app.config.get("LLM_MODEL"))


def describe(app: Flask) -> str:
    """For /health: ``offline`` or ``configured: <model>`` (never calls the model)."""
    return f"configured: {app.config['LLM_MODEL']}" if is_configured(app) else OFFLINE_MODEL


def upstream_messages(persona: Persona, history: list[dict[str, Any]], content: str) -> list[dict[str, str]]:
    """What the model reads: the persona's system prompt, the earlier messages, the new one.

    Offline notices are left out: they are the app talking, not the assistant. So are replies
    that broke off (``incomplete``): the model would read a fragment as its own finished answer.
    """
    messages = [{"role": "system", "content": persona.system_prompt}]
    for message in history:
        meta = message.get("metadata", {})
        if message.get("role") in ("user", "assistant") and not (meta.get("offline") or meta.get("incomplete")):
            messages.append({"role": message["role"], "content": message["content"]})
    messages.append({"role": "user", "content": content})
    return messages


class Reply:
    """One reply being produced. Iterate once for ``(kind, text)`` pieces; ``close()`` releases it."""

    model: str = OFFLINE_MODEL
    offline: bool = True

    def __init__(self) -> None:
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self.reasoning: list[str] = []

    def __iter__(self) -> Iterator[tuple[str, str]]:
        yield TEXT, OFFLINE_REPLY

    def close(self) -> None:
        """Release the connection; safe to call more than once."""

    def metadata(self, persona: Persona, latency_ms: int) -> dict[str, Any]:
        """The assistant message's metadata for a reply that has ended."""
        if self.offline:
            return {"offline": True}  # the same for every persona; the session names its persona
        meta: dict[str, Any] = {"model": self.model, "persona": persona.id, "latency_ms": latency_ms}
        if self.usage:
            meta["usage"] = self.usage
        if self.finish_reason:
            meta["finish_reason"] = self.finish_reason
            if self.finish_reason == "length":  # the token limit (max_tokens) cut it
                meta["truncated"] = True
        if "".join(self.reasoning).strip():
            meta["reasoning"] = "".join(self.reasoning)
        return meta

    def no_text(self) -> UpstreamError:
        """The error for a reply that ended without any text."""
        if self.finish_reason == "length":
            return UpstreamError(
                "The language model reached its length limit (max_tokens) before writing any answer. "
                f"{SAVED} If this keeps happening, an operator can raise the persona's max_tokens."
            )
        return UpstreamError(f"The language model answered with no text. {SAVED}")


class ModelReply(Reply):
    """A streamed Chat Completion from an OpenAI-compatible server."""

    offline = False

    def __init__(self, config: Any, persona: Persona, messages: list[dict[str, str]]) -> None:
        super().__init__()
        self.base_url: str = config["LLM_BASE_URL"]
        self.model = persona.model or config["LLM_MODEL"]
        self.timeout = float(config["LLM_TIMEOUT"])
        self.max_seconds = float(config["LLM_MAX_SECONDS"])
        self.api_key = config.get("LLM_API_KEY") or "not-needed"
        self.persona = persona
        self.messages = messages
        self._stream: model_http.ModelStream | None = None
        self._socket: Any = None  # until the answer's headers came: what close() shuts down

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": self.messages, "stream": True}
        if self.persona.temperature is not None:
            request["temperature"] = self.persona.temperature
        if self.persona.max_tokens is not None:
            request["max_tokens"] = self.persona.max_tokens
        request["stream_options"] = {"include_usage": True}
        return request

    def _open(self) -> model_http.ModelStream:
        request = self._request()
        try:
            return model_http.post_stream(self.base_url, self.api_key, self.timeout, request, self._connected)
        except model_http.ModelHTTPError as exc:
            # Older servers reject stream_options; usage is a nicety, the reply is not. Any
            # other refusal (a conversation too long, say) would only be refused twice.
            if exc.status_code not in (400, 422) or "stream_options" not in upstream.error_text(exc):
                raise
            request.pop("stream_options")
            return model_http.post_stream(self.base_url, self.api_key, self.timeout, request, self._connected)

    def _connected(self, sock: Any) -> None:
        self._socket = sock

    def __iter__(self) -> Iterator[tuple[str, str]]:
        started = time.monotonic()
        streaming = False
        try:
            self._stream = response = self._open()
            body = self._until_deadline(response.iter_bytes(), started + self.max_seconds)
            if "json" in response.headers.get("content-type", ""):  # a server that ignores stream=True
                yield from self._whole(b"".join(body))
                return
            streaming = True
            yield from self._pieces(upstream.sse_events(upstream.lines(body)))
        except UPSTREAM_ERRORS:
            raise
        except Exception as exc:  # every upstream failure becomes a 502 or 504
            raise self._translate(exc, time.monotonic() - started, streaming) from exc
        finally:
            self.close()

    def _until_deadline(self, chunks: Iterable[bytes], deadline: float) -> Iterator[bytes]:
        """The body as it arrives, cut once the reply has taken CHATAPP_LLM_MAX_SECONDS.

        LLM_TIMEOUT bounds each wait for data (silence); this bounds the whole reply, so a
        server that only sends keep-alive comments, or dribbles text forever, is cut too. It
        is checked as data arrives, so a cut comes at most one wait (LLM_TIMEOUT) late.
        """
        for chunk in chunks:
            if time.monotonic() > deadline:
                log.warning("model reply cut at the deadline: model=%s persona=%s", self.model, self.persona.id)
                raise UpstreamTimeout(
                    f"The language model did not finish its reply within {self.max_seconds:g} "
                    f"second{'' if self.max_seconds == 1 else 's'}. {SAVED} If this keeps happening, an "
                    "operator can raise CHATAPP_LLM_MAX_SECONDS or lower the persona's max_tokens.",
                    reason=PAST_DEADLINE,
                )
            yield chunk

    def _pieces(self, events: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        """The pieces of the reply from the stream's events, until ``[DONE]`` or the end.

        Read here rather than through the openai package's iterator, which skips llama.cpp's
        ``error:`` lines and ends quietly: an error is an error, and a stream that ends before
        the model said it finished (a ``finish_reason``) is one too.
        """
        for event, data in events:
            if event == "error":
                raise self._failed_mid_reply()
            if data.strip() == "[DONE]":
                break
            chunk = json.loads(data)
            if not isinstance(chunk, dict):
                raise ValueError("a stream chunk that is not an object")
            if chunk.get("error"):
                raise self._failed_mid_reply()
            if chunk.get("usage"):
                self.usage = upstream.usage(chunk["usage"])
            choice = (chunk.get("choices") or [None])[0]
            if not isinstance(choice, dict):
                continue  # role-only, usage-only or empty chunks: data all the same
            delta = choice.get("delta") or {}
            thought = upstream.reasoning(delta)
            if thought:
                self.reasoning.append(thought)
                yield REASONING, thought
            text = delta.get("content")
            if isinstance(text, str) and text:
                yield TEXT, text
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        if self.finish_reason is None:
            raise UpstreamError(
                "The language model server ended its answer before the model had finished it. "
                f"{SAVED} If this keeps happening, an operator can check the model server's logs.",
                reason=ENDED_UNFINISHED,
            )

    def _failed_mid_reply(self) -> UpstreamError:
        # The upstream's own message is not passed on: it may quote the conversation.
        log.warning("model reported an error mid-reply: model=%s persona=%s", self.model, self.persona.id)
        return UpstreamError(
            "The language model server answered with an error: it reported a failure in the "
            f"middle of its answer; try again in a moment. {SAVED}",
            reason=FAILED_MID_REPLY,
        )

    def _whole(self, body: bytes) -> Iterator[tuple[str, str]]:
        data = json.loads(body)
        if data.get("usage"):
            self.usage = upstream.usage(data["usage"])
        choice = (data.get("choices") or [{}])[0]
        self.finish_reason = choice.get("finish_reason") or None
        message = choice.get("message") or {}
        thought = upstream.reasoning(message)
        if thought:
            self.reasoning.append(thought)
            yield REASONING, thought
        text = message.get("content")
        if text:
            yield TEXT, text

    def _translate(
        self, exc: Exception, seconds: float, streaming: bool
    ) -> UpstreamError | UpstreamTimeout | UpstreamBusy | ContextTooLong:
        """An error a person can act on; the log gets the kind and status, never content or keys.

        ``streaming``: the failure came while reading the reply, after the response headers.
        """
        status = getattr(exc, "status_code", None)
        log.warning(
            "model call failed: %s status=%s model=%s persona=%s after %.2fs",
            type(exc).__name__,
            status,
            self.model,
            self.persona.id,
            seconds,
        )
        failure = upstream.http_failure(exc)
        if failure == "timeout":
            return UpstreamTimeout(
                f"The language model did not answer within {self.timeout:g} "
                f"second{'' if self.timeout == 1 else 's'}. {SAVED} "
                "If this keeps happening, an operator can check the model server or raise "
                "CHATAPP_LLM_TIMEOUT."
            )
        if streaming and failure == "transport":
            return UpstreamError(
                f"The connection to the language model server broke off in the middle of its answer. {SAVED}",
                reason=CONNECTION_LOST,
            )
        if failure == "transport":
            return UpstreamError(
                f"The language model server could not be reached. {SAVED} If this keeps "
                "happening, an operator can check that it is running and that CHATAPP_LLM_BASE_URL "
                "points to it."
            )
        if status in (400, 413, 422) and upstream.says_context_too_long(exc):
            return ContextTooLong(TOO_LONG)
        if status in (429, 503):
            retry_after = upstream.retry_after(getattr(exc, "headers", {}).get("retry-after"))
            wait = (
                f"try again in {retry_after} second{'' if retry_after == 1 else 's'}"
                if retry_after
                else "wait a moment"
            )
            what = (
                "is busy or over its quota" if status == 429 else "is unavailable for now (it may be loading the model)"
            )
            return UpstreamBusy(f"The language model server {what} (HTTP {status}); {wait}. {SAVED}", retry_after)
        if status in (401, 403):
            hint = "it refused the API key; an operator can check CHATAPP_LLM_API_KEY."
        elif status == 404:
            hint = (
                f"it does not know the model '{self.model}' or the address is wrong; an operator "
                "can check CHATAPP_LLM_MODEL and CHATAPP_LLM_BASE_URL."
            )
        elif status is not None:
            hint = "it may be overloaded or restarting; try again in a moment."
        else:
            hint = "its answer could not be read; try again in a moment."
        code = f" (HTTP {status})" if status else ""
        return UpstreamError(f"The language model server answered with an error{code}: {hint} {SAVED}")

    def close(self) -> None:
        """Hang up; from another thread or greenlet too (a Stop), which it wakes from a read."""
        stream, self._stream = self._stream, None
        sock, self._socket = self._socket, None
        if stream is not None:
            stream.close()
        elif sock is not None:  # still waiting for the answer's headers
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def start_reply(app: Flask, persona: Persona, history: list[dict[str, Any]], content: str) -> Reply:
    """A reply to ``content`` from the configured model, or from the offline backend.

    Nothing is sent until the reply is iterated.
    """
    if not is_configured(app):
        hint_offline()
        return Reply()
    return ModelReply(app.config, persona, upstream_messages(persona, history, content))
