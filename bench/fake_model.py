#!/usr/bin/env python3
"""A bench-grade fake OpenAI-compatible model: thousands of concurrent streams on one core.

``POST /v1/chat/completions`` streams a fixed reply, ``--pieces`` pieces ``--interval`` seconds
apart (the first at once), then a finish chunk, a usage chunk when ``stream_options`` asks,
and ``data: [DONE]``. One asyncio loop, raw HTTP/1.1 with keep-alive, every chunk encoded once
at start: per piece it only writes bytes. tests/fake_llm.py is the tests' richer, threaded
fake; this one only has to be cheap. The reply is ``reply_text(pieces)``.

    python bench/fake_model.py --port 8100 [--pieces 40] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

import uvloop

PREFIX = b"/v1/chat/completions"


def piece(n: int) -> str:
    return f"w{n:02d} "


def reply_text(pieces: int) -> str:
    """What the app must store for each reply: every piece, joined."""
    return "".join(piece(n) for n in range(pieces))


def _chunk(data: dict) -> bytes:
    raw = b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(raw), raw)


def _event(delta: dict | None, finish: str | None = None, **extra: object) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return _chunk(
        {"id": "bench", "object": "chat.completion.chunk", "created": 0, "model": "bench", "choices": choices, **extra}
    )


class Model:
    def __init__(self, pieces: int, interval: float) -> None:
        self.interval = interval
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Cache-Control: no-cache\r\n\r\n"
        )
        self.first = head + _event({"role": "assistant", "content": ""}) + _event({"content": piece(0)})
        self.rest = [_event({"content": piece(n)}) for n in range(1, pieces)]
        self.finish = _event({}, finish="stop")
        self.usage = _event(None, usage={"prompt_tokens": 10, "completion_tokens": pieces, "total_tokens": 10 + pieces})
        self.done = _chunk_raw(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        self.streams = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if not head.split(b" ", 2)[1].startswith(PREFIX):
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                await self.stream(writer, b'"include_usage"' in body)
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter, usage: bool) -> None:
        self.streams += 1
        started = time.monotonic()
        writer.write(self.first)
        for n, raw in enumerate(self.rest, start=1):
            await asyncio.sleep(max(0.0, started + n * self.interval - time.monotonic()))
            writer.write(raw)
        writer.write(self.finish + (self.usage if usage else b"") + self.done)
        await writer.drain()


def _chunk_raw(raw: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(raw), raw)


async def main(port: int, pieces: int, interval: float) -> None:
    model = Model(pieces, interval)
    server = await asyncio.start_server(model.serve, "127.0.0.1", port, backlog=4096, limit=1 << 20)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pieces", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.1)
    options = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main(options.port, options.pieces, options.interval))
