"""The assistant's replies: an offline backend, or any OpenAI-compatible Chat Completions server.

A reply is a ``Reply``: iterate it for the pieces of text as the model produces them, then
read ``usage``. Failures raise ``UpstreamError`` (502) or ``UpstreamTimeout`` (504), HTTP
errors whose description tells a person what to do; the views turn them into a JSON error
or an SSE ``error`` event. Nothing here touches storage.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import openai
from flask import Flask
from werkzeug.exceptions import BadGateway, GatewayTimeout

from chatapp.personas import Persona
from chatapp.storage import make_message

log = logging.getLogger(__name__)

OFFLINE_MODEL = "offline"
OFFLINE_REPLY = (
    "I'm offline: no language model is configured for this chat service, so I can't "
    "answer yet. Your message is saved. To connect a model, an operator sets "
    "CHATAPP_LLM_BASE_URL (any OpenAI-compatible endpoint) and CHATAPP_LLM_MODEL."
)
SAVED = "Your message is saved; press Retry to ask again."


class UpstreamError(BadGateway):
    """The model server failed or could not be reached."""

    outcome = "error"


class UpstreamTimeout(GatewayTimeout):
    """The model server did not answer (or stopped answering) within CHATAPP_LLM_TIMEOUT."""

    outcome = "timeout"


def offline_reply() -> dict[str, Any]:
    """A plain reply saying that nothing is connected, and how to connect something."""
    return make_message("assistant", OFFLINE_REPLY, {"offline": True})


def is_configured(app: Flask) -> bool:
    """True when a language model is configured; False means the offline backend answers."""
    return bool(app.config.get("LLM_BASE_URL") and app.config.get("LLM_MODEL"))


def describe(app: Flask) -> str:
    """For /health: ``offline`` or ``configured: <model>`` (never calls the model)."""
    return f"configured: {app.config['LLM_MODEL']}" if is_configured(app) else OFFLINE_MODEL


def upstream_messages(persona: Persona, history: list[dict[str, Any]], content: str) -> list[dict[str, str]]:
    """What the model reads: the persona's system prompt, the earlier messages, the new one.

    Offline notices are left out: they are the app talking, not the assistant.
    """
    messages = [{"role": "system", "content": persona.system_prompt}]
    for message in history:
        if message.get("role") in ("user", "assistant") and not message.get("metadata", {}).get("offline"):
            messages.append({"role": message["role"], "content": message["content"]})
    messages.append({"role": "user", "content": content})
    return messages


class Reply:
    """One reply being produced. Iterate once for the text pieces; ``close()`` releases it."""

    model: str = OFFLINE_MODEL
    offline: bool = True

    def __init__(self) -> None:
        self.usage: dict[str, int] | None = None

    def __iter__(self) -> Iterator[str]:
        yield OFFLINE_REPLY

    def close(self) -> None:
        """Release the connection; safe to call more than once."""

    def metadata(self, persona: Persona, latency_ms: int) -> dict[str, Any]:
        """The assistant message's metadata for a reply that has ended."""
        if self.offline:
            return {"offline": True}  # the same for every persona; the session names its persona
        meta: dict[str, Any] = {"model": self.model, "persona": persona.id, "latency_ms": latency_ms}
        if self.usage:
            meta["usage"] = self.usage
        return meta


class ModelReply(Reply):
    """A streamed Chat Completion from an OpenAI-compatible server."""

    offline = False

    def __init__(self, config: Any, persona: Persona, messages: list[dict[str, str]]) -> None:
        super().__init__()
        self.base_url: str = config["LLM_BASE_URL"]
        self.model = persona.model or config["LLM_MODEL"]
        self.timeout = float(config["LLM_TIMEOUT"])
        self.api_key = config.get("LLM_API_KEY") or "not-needed"
        self.persona = persona
        self.messages = messages
        self._client: openai.OpenAI | None = None
        self._stream: Any = None

    def _request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": self.messages, "stream": True}
        if self.persona.temperature is not None:
            request["temperature"] = self.persona.temperature
        if self.persona.max_tokens is not None:
            request["max_tokens"] = self.persona.max_tokens
        request["stream_options"] = {"include_usage": True}
        return request

    def _open(self) -> Any:
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            # The read time-out applies to each wait for data, so a model that stalls
            # mid-reply is given up after LLM_TIMEOUT too, not only one that never starts.
            timeout=openai.Timeout(self.timeout, connect=self.timeout),
            max_retries=0,  # the visitor's Retry button is the retry; a worker must not wait twice
        )
        request = self._request()
        try:
            return self._client.chat.completions.create(**request)
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            # Older servers reject stream_options; usage is a nicety, the reply is not.
            request.pop("stream_options")
            return self._client.chat.completions.create(**request)

    def __iter__(self) -> Iterator[str]:
        started = time.monotonic()
        try:
            self._stream = self._open()
            content_type = self._stream.response.headers.get("content-type", "")
            if "json" in content_type:  # a server that ignores stream=True
                yield from self._whole(self._stream.response.read())
                return
            # Chunks without text (role, usage, a reasoning model's thinking) are data too:
            # the time-out is per wait for data, so they keep a reply alive.
            for chunk in self._stream:
                if getattr(chunk, "usage", None):
                    self.usage = _usage(chunk.usage)
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    yield text
        except (UpstreamError, UpstreamTimeout):
            raise
        except Exception as exc:  # every upstream failure becomes a 502 or 504
            raise self._translate(exc, time.monotonic() - started) from exc
        finally:
            self.close()

    def _whole(self, body: bytes) -> Iterator[str]:
        data = json.loads(body)
        if data.get("usage"):
            self.usage = _usage(data["usage"])
        text = (data.get("choices") or [{}])[0].get("message", {}).get("content")
        if text:
            yield text

    def _translate(self, exc: Exception, seconds: float) -> UpstreamError | UpstreamTimeout:
        """An error a person can act on; the log gets the kind and status, never content or keys."""
        status = getattr(exc, "status_code", None)
        log.warning(
            "model call failed: %s status=%s model=%s persona=%s after %.2fs",
            type(exc).__name__,
            status,
            self.model,
            self.persona.id,
            seconds,
        )
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamTimeout(
                f"The language model did not answer within {self.timeout:g} "
                f"second{'' if self.timeout == 1 else 's'}. {SAVED} "
                "If this keeps happening, an operator can check the model server or raise "
                "CHATAPP_LLM_TIMEOUT."
            )
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamError(
                f"The language model server could not be reached. {SAVED} If this keeps "
                "happening, an operator can check that it is running and that CHATAPP_LLM_BASE_URL "
                "points to it."
            )
        if status in (401, 403):
            hint = "it refused the API key; an operator can check CHATAPP_LLM_API_KEY."
        elif status == 404:
            hint = (
                f"it does not know the model '{self.model}' or the address is wrong; an operator "
                "can check CHATAPP_LLM_MODEL and CHATAPP_LLM_BASE_URL."
            )
        elif status == 429:
            hint = "it is busy or over its quota; wait a moment before retrying."
        elif status is not None:
            hint = "it may be overloaded or restarting; try again in a moment."
        elif isinstance(exc, openai.APIError):
            hint = "it reported a failure in the middle of its answer; try again in a moment."
        else:
            hint = "its answer could not be read; try again in a moment."
        code = f" (HTTP {status})" if status else ""
        return UpstreamError(f"The language model server answered with an error{code}: {hint} {SAVED}")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        client, self._client = self._client, None
        if stream is not None:
            stream.close()
        if client is not None:
            client.close()


def _usage(usage: Any) -> dict[str, int]:
    raw = usage if isinstance(usage, dict) else usage.model_dump()
    return {
        k: int(raw[k]) for k in ("prompt_tokens", "completion_tokens", "total_tokens") if isinstance(raw.get(k), int)
    }


def start_reply(app: Flask, persona: Persona, history: list[dict[str, Any]], content: str) -> Reply:
    """A reply to ``content`` from the configured model, or from the offline backend.

    Nothing is sent until the reply is iterated.
    """
    if not is_configured(app):
        return Reply()
    return ModelReply(app.config, persona, upstream_messages(persona, history, content))
