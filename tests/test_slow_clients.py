"""Slow clients cannot take the service down (issue 11): gunicorn with the repo's gunicorn.conf.py.

200 slowloris sockets trickle a request's headers (a byte every 2 s, never finishing, opening
again whenever gunicorn sends them away) and 100 clients each ask for a ~10 MB answer and never
read it, and hold it for 10 s once all have it. From the start of the attack to its end /health
must answer within 1 s at the 99th percentile. Under gthread's 40 slots either attack alone
held every slot.

The 100 answers are asked for a few at a time, each as one before has begun to arrive: building
one costs ~0.15 s of CPU (~50 ms of it in Redis's one thread), 15 s for all of them on 2 cores,
a load on the CPU that no server setting hides, and not what is tested here.

The ~10 MB answer is a session of 25 messages of 400,000 characters read as one page (the
operator is held to no quota; the message length is raised for this server only). A
never-reading client's receive buffer is 64 KB, as a slow client's is, so the server's writes
block (over loopback the kernel would otherwise buffer most of 10 MB).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatapp.settings import PROJECT_ROOT
from tests.helpers import OPERATOR_KEY
from tests.servers import HOST, AppServer, RedisServer, free_port

pytestmark = pytest.mark.redis

GUNICORN = Path(sys.executable).with_name("gunicorn")
SLOWLORIS = 200
NON_READERS = 100
MESSAGE = 400_000  # characters per message
MESSAGES = 25  # posts; each also stores a short offline reply
MEASURE = 10.0  # seconds the answers are held (and probed) once all have begun to arrive
P99_LIMIT = 1.0
PROBE_TIMEOUT = 5.0
IN_FLIGHT = 6  # never-readers whose answer has not begun to arrive yet
BLOCKED = 32 * 1024  # unread bytes that show an answer is arriving (and, held, that it is stuck)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[AppServer]:
    port = free_port()
    env = {
        "CHATAPP_ENV": "production",
        "CHATAPP_SECRET_KEY": "test-secret-key-for-the-slow-clients-0123456789",
        "CHATAPP_API_KEYS": OPERATOR_KEY,
        "CHATAPP_MAX_MESSAGE_LENGTH": str(MESSAGE),
        "GUNICORN_BIND": f"{HOST}:{port}",
        "GUNICORN_WORKERS": None,  # the config file's defaults, all of them
        "WEB_CONCURRENCY": None,
        "GUNICORN_WORKER_CLASS": None,
        "GUNICORN_KEEPALIVE": None,
        "PROMETHEUS_MULTIPROC_DIR": None,
        "HOME": str(tmp_path_factory.mktemp("slow-home")),
        "XDG_RUNTIME_DIR": None,
    }
    with RedisServer(tmp_path_factory.mktemp("slow-redis")) as own_redis:
        env["CHATAPP_REDIS_URL"] = own_redis.url
        log = tmp_path_factory.mktemp("slow-gunicorn") / "gunicorn.log"
        with AppServer([GUNICORN, "wsgi:app"], port, env=env, cwd=PROJECT_ROOT, log_path=log) as app_server:
            yield app_server


def request(port: int, method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
    """One request on a connection of its own, read to the end."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((HOST, port), timeout=timeout) as conn:
        conn.sendall(head.encode() + payload)
        received = b""
        while chunk := conn.recv(1 << 20):
            received += chunk
    return int(received.split(b" ", 2)[1]), received.partition(b"\r\n\r\n")[2]


def big_session(port: int) -> str:
    status, body = request(port, "POST", "/api/session/create", {"user_id": "hoarder"})
    assert status == 201, body
    sid = json.loads(body)["session_id"]
    for n in range(MESSAGES):
        status, body = request(port, "POST", f"/api/sessions/{sid}/messages", {"content": chr(97 + n % 26) * MESSAGE})
        assert status == 201, body[:300]
    return sid


class Probe(threading.Thread):
    """GET /health on a new connection each time, one after another, until ``stop`` is set.

    A probe that times out counts as the time it waited (the p99 is the promise, and
    on a loaded CI machine one probe in hundreds once waited over 5 s); any other failure (an
    error status, a refused or reset connection) is a failure."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.timeouts = 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status, _ = request(self.port, "GET", "/health", timeout=PROBE_TIMEOUT)
                if status != 200:
                    self.failures.append(f"status {status}")
            except TimeoutError:
                self.timeouts += 1
            except OSError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.01)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]


async def slowloris(port: int, stop: asyncio.Event, opened: list[int]) -> None:
    """A request whose headers never end: a byte every 2 s; sent away, it comes back."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        opened.append(1)
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while not stop.is_set():
                try:
                    if not await asyncio.wait_for(reader.read(4096), 2.0):
                        break  # gunicorn closed it
                except TimeoutError:
                    writer.write(b"z")
                    await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def unread_bytes(conn: socket.socket) -> int:
    """What has arrived on ``conn`` and not been read (FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0])


def never_reader(port: int, path: str) -> socket.socket:
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect: the window stays small
    conn.connect((HOST, port))
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR_KEY}\r\n\r\n".encode())
    return conn


async def hold_answers(port: int, path: str, held: list[socket.socket]) -> None:
    """NON_READERS clients into ``held``, each with the head of a 200 and part of its body unread."""
    pending: list[socket.socket] = []
    deadline = time.monotonic() + 30
    try:
        while len(held) < NON_READERS:
            while len(pending) < IN_FLIGHT and len(held) + len(pending) < NON_READERS:
                pending.append(never_reader(port, path))
            await asyncio.sleep(0.02)
            arrived = [conn for conn in pending if unread_bytes(conn) >= BLOCKED]
            held += arrived
            pending = [conn for conn in pending if conn not in arrived]
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(held)} of {NON_READERS} answers began to arrive within 30 s")
    finally:
        for conn in pending:
            conn.close()


async def attack(port: int, path: str, probe: Probe, held: list[socket.socket]) -> int:
    """Slowloris and the probe throughout, the answers held for MEASURE s. Returns sockets opened."""
    stop = asyncio.Event()
    opened: list[int] = []
    lorises = [asyncio.create_task(slowloris(port, stop, opened)) for _ in range(SLOWLORIS)]
    probe.start()
    try:
        await hold_answers(port, path, held)
        await asyncio.sleep(MEASURE)
    finally:
        probe.stop.set()
        stop.set()
        await asyncio.gather(*lorises, return_exceptions=True)
        probe.join(10)
    return len(opened)


def run_apart(coroutine: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on a thread of its own: Playwright's sync API (the browser tests, earlier in
    the same process) leaves an event loop marked running on the main thread."""
    result: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def test_slowloris_and_clients_that_never_read_leave_health_answering_within_a_second(server):
    sid = big_session(server.port)
    path = f"/api/sessions/{sid}/messages?limit={2 * MESSAGES}"
    status, body = request(server.port, "GET", path)
    assert status == 200 and len(body) > 10_000_000  # the answer each never-reader asks for
    probe = Probe(server.port)

    held: list[socket.socket] = []
    try:
        opened = run_apart(attack(server.port, path, probe, held))
        heads = {conn.recv(12, socket.MSG_PEEK) for conn in held}
        still_unread = sum(1 for conn in held if unread_bytes(conn) >= BLOCKED)
        after = request(server.port, "GET", "/health", timeout=5)[0]
    finally:
        for conn in held:
            conn.close()

    assert opened > SLOWLORIS  # each slow socket was opened, and again when gunicorn sent it away
    assert heads == {b"HTTP/1.1 200"} and still_unread == NON_READERS  # all held to the end
    assert not probe.failures, probe.failures[:5]
    assert len(probe.latencies) > 50
    assert probe.p99() <= P99_LIMIT, (probe.p99(), max(probe.latencies), len(probe.latencies), probe.timeouts)
    assert after == 200
