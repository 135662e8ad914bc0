"""Reading a session's live channel (``GET /api/sessions/{id}/events``) in tests.

``Channel`` reads through the Flask test client on a thread of its own; ``HttpChannel``
reads a real server over a socket. Both give events as ``(id, kind, data)`` in order, and
keep comments (keep-alives) apart.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from typing import Any

from flask.testing import FlaskClient

LiveEvent = tuple[str | None, str, dict[str, Any]]


def parse_block(block: str) -> LiveEvent | str | None:
    """One SSE block: an event, a comment's text, or None (a `retry:` line alone)."""
    event_id, kind, data, comment = None, "message", [], None
    for line in block.split("\n"):
        if line.startswith(":"):
            comment = line[1:].strip()
            continue
        field, _, value = line.partition(": ")
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)
    if data:
        return event_id, kind, json.loads("\n".join(data))
    return comment


class _Reader:
    def __init__(self) -> None:
        self.events: queue.Queue[LiveEvent] = queue.Queue()
        self.comments: list[str] = []
        self.ended = threading.Event()
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            parsed = parse_block(block.decode())
            if isinstance(parsed, tuple):
                self.events.put(parsed)
            elif parsed:
                self.comments.append(parsed)

    def next(self, timeout: float = 5) -> LiveEvent:
        return self.events.get(timeout=timeout)

    def until(self, kind: str, timeout: float = 5) -> list[LiveEvent]:
        """Every event up to and including the first ``kind``."""
        seen: list[LiveEvent] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1][1] != kind:
            seen.append(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
        return seen

    def quiet(self, seconds: float = 0.3) -> list[LiveEvent]:
        """What else arrives within ``seconds`` (for proving nothing is repeated)."""
        time.sleep(seconds)
        found = []
        while not self.events.empty():
            found.append(self.events.get_nowait())
        return found


class Channel(_Reader):
    """An events subscription through the Flask test client."""

    def __init__(self, client: FlaskClient, session_id: str, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.response = client.get(f"/api/sessions/{session_id}/events", headers=headers or {}, buffered=False)
        self.status = self.response.status_code
        self._closing = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for chunk in self.response.response:
                self.feed(chunk if isinstance(chunk, bytes) else chunk.encode())
                if self._closing.is_set():
                    break
        finally:
            self.response.close()  # from this thread: the generator is not running now
            self.ended.set()

    def close(self) -> None:
        """Hang up (at the next chunk: keep the app's SSE_KEEPALIVE short)."""
        self._closing.set()
        self.ended.wait(5)


class HttpChannel(_Reader):
    """An events subscription to a real server, read from a socket on a thread."""

    def __init__(self, port: int, session_id: str, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        lines = [f"GET /api/sessions/{session_id}/events HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        self.status = int(head.split(b" ", 2)[1])
        self.chunked = b"chunked" in head.lower()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        raw = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                raw += data
                if self.chunked:
                    raw = self._dechunk(raw)
                else:
                    self.feed(raw)
                    raw = b""
        except OSError:
            pass
        finally:
            self.ended.set()

    def _dechunk(self, raw: bytes) -> bytes:
        while b"\r\n" in raw:
            size_line, rest = raw.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                break
            self.feed(rest[:size])
            raw = rest[size + 2 :]
            if size == 0:
                break
        return raw

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.ended.wait(5)
