"""The model server's HTTP: one Chat Completions POST per reply, its body read as it arrives.

On the standard library's ``http.client``, one connection per reply, rather than through
the openai package and httpx. A streamed reply is read one small chunk at a time; each
went through ~10 layers of httpx/httpcore/h11 generators, and every request and response
scanned httpcore's whole pool: with a thousand replies at once that was most of a worker's
CPU (py-spy: ~40% of samples, bench/results.md). Here a chunk is one ``read1``.

Failures are exceptions that say what they are: ``ModelTimeout`` (a connect or a read that
waited LLM_TIMEOUT), ``ModelUnreachable`` (could not connect, or the connection broke) and
``ModelHTTPError`` (an HTTP error status, with the server's body and headers);
``chatapp.assistant`` turns them into answers a person can act on.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit

ERROR_BODY_LIMIT = 64 * 1024  # of an error answer, enough for its message
READ_SIZE = 64 * 1024


class ModelTimeout(TimeoutError):
    """Connecting, or waiting for the next bytes, took longer than the time-out."""


class ModelUnreachable(ConnectionError):
    """The server could not be reached, or the connection broke off."""


class ModelHTTPError(Exception):
    """The server answered an HTTP error status: ``status_code``, its ``body`` (JSON when it
    was JSON, else text), ``headers`` (lower-case names) and a ``message``."""

    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        error = body.get("error") if isinstance(body, dict) else None
        detail = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
        self.status_code = status
        self.headers = headers
        self.body = body
        self.message = f"Error code: {status}" + (f" - {detail}" if detail else "")
        super().__init__(self.message)


class _Connection(http.client.HTTPConnection):
    """Plain HTTP to an address resolved once per process: under gevent, every getaddrinfo
    (even of 127.0.0.1) goes to a thread pool and back, per reply."""

    def connect(self) -> None:
        family, address = _resolved(self.host, self.port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


_addresses: dict[tuple[str, int], tuple[float, socket.AddressFamily, Any]] = {}
RESOLVE_SECONDS = 60.0  # how long a resolved address is used before asking again


def _resolved(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The first address ``host`` resolves to, asked at most once a minute (an IP: never)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)
    now = time.monotonic()
    known = _addresses.get((host, port))
    if known is None or now - known[0] > RESOLVE_SECONDS:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        known = _addresses[(host, port)] = (now, family, address)
    return known[1], known[2]


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every connection: loading the CA certificates costs ~30 ms."""
    return ssl.create_default_context()


class ModelStream:
    """An answer being read: its ``status``, ``headers`` (lower-case names) and body chunks."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, sock: socket.socket | None
    ) -> None:
        self._connection = connection
        self._response = response
        self._socket = sock  # the connection forgets it once the answer says "Connection: close"
        self._closed = False
        self._reading = False
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}

    def iter_bytes(self) -> Iterator[bytes]:
        """The body (de-chunked) as it arrives; a time-out or a break raises."""
        try:
            while not self._closed:
                self._reading = True
                try:
                    chunk = self._response.read1(READ_SIZE)
                except TimeoutError as exc:
                    raise ModelTimeout(str(exc) or "read timed out") from exc
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    raise ModelUnreachable(f"{type(exc).__name__}: {exc}") from exc
                finally:
                    self._reading = False
                if not chunk:
                    return
                yield chunk
        finally:
            if self._closed:
                self._release()

    def close(self) -> None:
        """Hang up (safe twice, and from another thread or greenlet than the reader's).

        The socket is shut down at once, which ends a read blocked elsewhere; the response
        itself is closed by whoever is not reading it (its buffer is the reader's meanwhile).
        """
        self._closed = True
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        if not self._reading:
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._response.close()
        self._connection.close()


def post_stream(
    base_url: str,
    api_key: str,
    timeout: float,
    request: dict[str, Any],
    connected: Callable[[socket.socket], None] | None = None,
) -> ModelStream:
    """POST ``request`` to ``<base_url>/chat/completions``; the answer, once its headers came.

    ``connected`` is given the socket as soon as there is one, so the caller can hang up
    (shut it down) while the server has not answered yet. An HTTP error status raises
    ``ModelHTTPError`` with the server's body (read, up to 64 KB).
    """
    url = urlsplit(base_url.rstrip("/") + "/chat/completions")
    if url.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.hostname or "", url.port, timeout=timeout, context=_tls()
        )
    else:
        connection = _Connection(url.hostname or "", url.port or 80, timeout=timeout)
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream, application/json",
    }
    path = url.path + (f"?{url.query}" if url.query else "")
    try:
        connection.connect()
        sock = connection.sock
        if connected is not None and sock is not None:
            connected(sock)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
    except TimeoutError as exc:
        connection.close()
        raise ModelTimeout(str(exc) or "timed out") from exc
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise ModelUnreachable(f"{type(exc).__name__}: {exc}") from exc
    stream = ModelStream(connection, response, sock)
    if response.status >= 400:
        try:
            raw = response.read(ERROR_BODY_LIMIT)
        except (OSError, http.client.HTTPException):
            raw = b""
        stream.close()
        raise ModelHTTPError(response.status, stream.headers, raw)
    return stream
