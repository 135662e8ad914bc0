"""A fake OpenAI-compatible Chat Completions server: real HTTP on loopback, for the tests.

``POST /v1/chat/completions`` streams ``data: {...}`` chunks ending with ``data: [DONE]``
(or answers one JSON document), records every request, and can misbehave on demand:

- ``normal``: the pieces at once, a chunk with ``finish_reason`` (``finish_reason=None``
  leaves it out, ``"length"`` says the token limit cut the reply), then a usage chunk when
  ``stream_options.include_usage`` asks; ``reasoning=[...]`` sends those pieces first as
  ``delta.<reasoning_field>`` (``reasoning_content`` as DeepSeek, vLLM and llama.cpp send it,
  or ``reasoning`` as Ollama does), before the text
- ``slow``: the first piece, then waits for ``release`` before the rest (``interval`` apart),
  so a test can prove the first piece reached the client before the model finished;
  ``hold_at=(1, 4)`` holds before pieces 1 and 4, each until ``holds[n]`` is set
- ``fail``: answers ``status`` (500, 401, ...) with an OpenAI-style error body (``error``
  replaces it, ``headers`` are added, e.g. ``{"Retry-After": "7"}``)
- ``hang``: reads the request and never answers
- ``stall``: streams the first piece, then never another byte
- ``broken``: streams the first piece, then an error object in the stream (as vLLM and
  others report a failure mid-reply), then ``[DONE]``
- ``error_line``: streams the first piece, then llama.cpp's mid-stream failure, an
  ``error: {...}`` line (not ``data:``), and ends the body
- ``drop``: streams the first piece, then closes the connection mid-body
- ``keepalive``: streams the first piece, then only ``: keep-alive`` comments, ``interval``
  apart, until the app hangs up
- ``dribble``: streams a piece every ``interval``, never finishing, until the app hangs up
- ``json``: ignores ``stream`` and answers one non-streaming completion
- ``reject_stream_options``: 400 when ``stream_options`` is present, otherwise ``normal``
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_PIECES = ["Hello", " from", " the", " fake", " model", "."]
DEFAULT_USAGE = {"prompt_tokens": 42, "completion_tokens": 6, "total_tokens": 48}
WAIT_LIMIT = 30.0  # no handler thread outlives a test by more than this


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


class FakeLLM:
    """Start on construction; ``close()`` (or the context manager) stops it."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._closing = threading.Event()
        self.reset()
        fake = self

        class Handler(_Handler):
            owner = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def reset(
        self,
        mode: str = "normal",
        pieces: list[str] | None = None,
        status: int = 500,
        interval: float = 0.0,
        usage: dict[str, int] | None = None,
        hold_at: tuple[int, ...] = (1,),
        finish_reason: str | None = "stop",
        reasoning: list[str] | None = None,
        reasoning_field: str = "reasoning_content",
        error: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> FakeLLM:
        """Forget recorded requests and set how the next requests are answered."""
        for event in getattr(self, "holds", {}).values():
            event.set()  # let handlers still waiting from a previous test go
        self.mode = mode
        self.pieces = list(pieces or DEFAULT_PIECES)
        self.status = status
        self.finish_reason = finish_reason
        self.reasoning = list(reasoning or [])
        self.reasoning_field = reasoning_field
        self.error = error or {"error": {"message": "fake failure", "type": "server_error"}}
        self.headers = dict(headers or {})
        self.hung_up = threading.Event()  # set when the app closed a never-ending stream
        self.interval = interval
        self.usage = dict(usage or DEFAULT_USAGE)
        self.requests = []
        # slow mode: the fake waits before piece n until holds[n] is set; release is the first
        self.holds = {n: threading.Event() for n in hold_at}
        self.release = self.holds[min(hold_at)] if hold_at else threading.Event()
        self.holds.setdefault(-1, self.release)
        self.first_sent = threading.Event()
        self.finished = threading.Event()  # set once [DONE] was written
        self.finished_at: float | None = None
        return self

    @property
    def reply(self) -> str:
        return "".join(self.pieces)

    def close(self) -> None:
        self._closing.set()
        for event in self.holds.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        fake.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        mode, hung_up = fake.mode, fake.hung_up  # this test's, even if the handler outlives it
        try:
            if mode == "fail":
                self._json(fake.status, fake.error, fake.headers)
            elif mode == "hang":
                self._wait(fake.release)
            elif mode == "json":
                self._json(200, self._completion(body))
            elif mode == "reject_stream_options" and "stream_options" in body:
                self._json(
                    400,
                    {
                        "error": {
                            "message": "Unrecognized request argument: stream_options",
                            "type": "invalid_request_error",
                        }
                    },
                )
            else:
                self._stream(body, mode)
        except (BrokenPipeError, ConnectionResetError):
            hung_up.set()  # the app hung up (time-out or client gone): expected in those tests

    def _wait(self, event: threading.Event) -> None:
        deadline = time.monotonic() + WAIT_LIMIT
        while not (event.is_set() or self.owner._closing.is_set()) and time.monotonic() < deadline:
            event.wait(0.05)

    def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        fake = self.owner
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": fake.finish_reason,
                    "message": {
                        "role": "assistant",
                        "content": fake.reply,
                        **({fake.reasoning_field: "".join(fake.reasoning)} if fake.reasoning else {}),
                    },
                }
            ],
            "usage": fake.usage,
        }

    def _chunk(
        self, body: dict[str, Any], delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
    ) -> bytes:
        data = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return f"data: {json.dumps(data)}\n\n".encode()

    def _send(self, raw: bytes) -> None:
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], mode: str) -> None:
        fake = self.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self._send(self._chunk(body, {"role": "assistant", "content": ""}))
        for piece in fake.reasoning:
            self._send(self._chunk(body, {fake.reasoning_field: piece}))
        for n, piece in enumerate(fake.pieces):
            if mode == "slow" and n in fake.holds:
                self._wait(fake.holds[n])
            if n == 1 and mode == "stall":
                self._wait(fake.release)
                return
            if n == 1 and mode == "broken":
                self._send(b'data: {"error": {"message": "CUDA out of memory", "type": "server_error"}}\n\n')
                break
            if n == 1 and mode == "error_line":  # llama.cpp's server: an "error" field, then the end
                self._send(b'error: {"code": 500, "message": "CUDA out of memory", "type": "server_error"}\n\n')
                self._send(b"")
                return
            if n == 1 and mode == "drop":
                return  # no last chunk: the body is cut off (Connection: close)
            if n == 1 and mode in ("keepalive", "dribble"):
                self._forever(body, mode)
                return
            if n and fake.interval:
                time.sleep(fake.interval)
            self._send(self._chunk(body, {"content": piece}))
            if n == 0:
                fake.first_sent.set()
        if fake.finish_reason is not None:
            self._send(self._chunk(body, {}, finish_reason=fake.finish_reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send(self._chunk(body, None, usage=fake.usage))
        self._send(b"data: [DONE]\n\n")
        self._send(b"")  # the last chunk of the chunked body
        fake.finished_at = time.monotonic()
        fake.finished.set()

    def _forever(self, body: dict[str, Any], mode: str) -> None:
        """Keep the reply open without finishing it, until the app hangs up (or the fake closes)."""
        fake = self.owner
        deadline = time.monotonic() + WAIT_LIMIT
        n = 1
        while not fake._closing.is_set() and time.monotonic() < deadline:
            time.sleep(fake.interval or 0.05)
            if mode == "keepalive":
                self._send(b": keep-alive\n\n")
            else:
                self._send(self._chunk(body, {"content": f" more{n}"}))
                n += 1
