"""The concurrency case of issue 11 (``bench/run.py --only concurrency``). See bench/README.md.

A fake OpenAI-compatible model (bench/fake_model.py, its own process) streams ``--pieces``
pieces ``--interval`` s apart per request; the app runs under gunicorn with the repo's
gunicorn.conf.py against its own redis-server. The load generator is one asyncio loop speaking
raw HTTP/1.1: it only looks for markers in the bytes (``event: delta``, ``event: done``), so it
costs little of the 2 cores it shares with the app, the model and Redis.

- ramp: ``--streams`` streamed replies (each on its own session, created beforehand) started
  evenly over ``--ramp`` s, and the same requests on the same ramp sent straight to the model;
  /health probed throughout; every reply read back and compared with the model's text;
- burst: as many started at once;
- memory: the gunicorn workers' RSS (from /proc) before the load and while most streams are open;
- idle subscriptions (``--subscriptions N``): N open ``GET /api/sessions/{id}/events``, the
  workers' RSS per subscription. Off by default: it adds a minute, and bench/subscriptions.py
  measures the same alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop
from fake_model import reply_text

from tests.servers import HOST, AppServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-" + secrets.token_urlsafe(16)
MODEL = "bench-model"
TIMEOUT = 120.0  # seconds any one request may take before it counts as failed


@dataclass
class Request:
    """One request's life, in time.monotonic() seconds."""

    started: float = 0.0
    head: float | None = None  # the answer's first bytes arrived (its status line)
    first: float | None = None  # the first piece of the reply arrived
    ended: float | None = None
    outcome: str = "not started"  # done, error, closed, timeout, HTTP <status>

    @property
    def to_first(self) -> float | None:
        return None if self.first is None else self.first - self.started


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


# --- raw HTTP/1.1 over asyncio ----------------------------------------------------------------


def http_request(method: str, path: str, body: Any = None, accept: str = "application/json") -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    return (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload


async def fetch(port: int, data: bytes) -> tuple[int, bytes]:
    """Send one request, read the answer to the end (Connection: close); (status, body), status 0
    when the connection failed."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        return 0, repr(exc).encode()
    try:
        writer.write(data)
        received = await reader.read()
    except OSError as exc:
        return 0, repr(exc).encode()
    finally:
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return int(head.split(b" ", 2)[1]), body


def dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if not size:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


async def stream(port: int, data: bytes, first: bytes, ends: dict[bytes, str], request: Request) -> None:
    """Send ``data`` and watch the answer for ``first`` and then one of ``ends``."""
    request.started = time.monotonic()
    request.outcome = "open"
    writer = None
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
            writer.write(data)
            tail = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    request.outcome = "closed"
                    break
                window = tail + chunk
                if request.head is None:
                    request.head = time.monotonic()
                if not tail and not window.startswith(b"HTTP/1.1 200"):
                    request.outcome = window[:12].decode("latin-1").replace("HTTP/1.1", "HTTP")
                    break
                if request.first is None and first in window:
                    request.first = time.monotonic()
                found = next((name for marker, name in ends.items() if marker in window), None)
                if found:
                    request.outcome = found
                    break
                tail = window[-64:]
    except TimeoutError:
        request.outcome = "timeout"
    except OSError as exc:
        request.outcome = type(exc).__name__
    finally:
        request.ended = time.monotonic()
        if writer is not None:
            writer.close()


async def run_load(
    port: int,
    bodies: list[bytes],
    first: bytes,
    ends: dict[bytes, str],
    ramp: float,
    requests: list[Request] | None = None,
) -> list[Request]:
    """One request per body, started evenly over ``ramp`` seconds (0: all at once), recorded in
    ``requests`` (new ones unless given, so that another thread can watch them as they go)."""
    requests = requests if requests is not None else [Request() for _ in bodies]
    begin = time.monotonic() + 0.2

    async def later(n: int) -> None:
        await asyncio.sleep(max(0.0, begin + ramp * n / len(bodies) - time.monotonic()))
        await stream(port, bodies[n], first, ends, requests[n])

    await asyncio.gather(*(later(n) for n in range(len(bodies))))
    return requests


APP_FIRST, APP_ENDS = b"event: delta", {b"event: done": "done", b"event: error": "error"}
MODEL_FIRST, MODEL_ENDS = b'"content":"w', {b"data: [DONE]": "done"}


def app_bodies(sessions: list[str]) -> list[bytes]:
    return [
        http_request("POST", f"/api/sessions/{sid}/messages", {"content": "Tell me"}, "text/event-stream")
        for sid in sessions
    ]


def model_bodies(count: int) -> list[bytes]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me"}], "stream": True}
    return [http_request("POST", "/v1/chat/completions", body, "text/event-stream")] * count


async def bounded(jobs: list[Callable[[], Any]], at_once: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def run(job: Callable[[], Any]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


async def create_sessions(port: int, count: int) -> list[str]:
    made = await bounded(
        [
            lambda n=n: fetch(port, http_request("POST", "/api/session/create", {"user_id": f"bench{n % 100}"}))
            for n in range(count)
        ]
    )
    bad = [status for status, _ in made if status != 201]
    if bad:
        raise RuntimeError(f"{len(bad)} session creations failed: {bad[:5]}")
    return [json.loads(body)["session_id"] for _, body in made]


async def stored_whole(port: int, sessions: list[str], expected: str) -> int:
    """How many of ``sessions`` end with the assistant's reply equal to ``expected``."""
    answers = await bounded(
        [lambda sid=sid: fetch(port, http_request("GET", f"/api/sessions/{sid}/messages?limit=2")) for sid in sessions]
    )
    whole = 0
    for status, body in answers:
        if status == 200:
            messages = json.loads(body)["messages"]
            whole += bool(messages) and messages[-1]["role"] == "assistant" and messages[-1]["content"] == expected
    return whole


# --- what runs beside the load ----------------------------------------------------------------


class HealthProbe(threading.Thread):
    """GET /health on a new connection every 50 ms (a load balancer's check), until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.latencies, self.failures = port, threading.Event(), [], 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection((HOST, self.port), timeout=10) as conn:
                    conn.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := conn.recv(65536):
                        answer += chunk
                self.failures += not answer.startswith(b"HTTP/1.1 200")
            except OSError:
                self.failures += 1
            self.latencies.append(time.monotonic() - started)
            self.stop.wait(0.05)


def worker_pids(master: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each process of the run spent between ``start`` and ``line``."""

    def __init__(self, master: int, others: dict[str, int]) -> None:
        self.master, self.others = master, others

    def start(self) -> None:
        self.workers = {pid: cpu_seconds(pid) for pid in worker_pids(self.master)}
        self.before = {name: cpu_seconds(pid) for name, pid in self.others.items()}
        self.own, self.wall = time.process_time(), time.monotonic()

    def line(self, what: str) -> str:
        workers = " + ".join(f"{cpu_seconds(pid) - was:.1f}" for pid, was in sorted(self.workers.items()))
        others = ", ".join(f"{name} {cpu_seconds(pid) - self.before[name]:.1f}" for name, pid in self.others.items())
        return (
            f"    CPU s during {what} ({time.monotonic() - self.wall:.1f} s): workers {workers}; {others}, "
            f"load generator {time.process_time() - self.own:.1f}"
        )


def workers_rss_kb(master: int) -> int:
    total = 0
    for pid in worker_pids(master):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total


class RssSampler(threading.Thread):
    """The workers' summed RSS every 0.2 s, with how many requests were open at that moment."""

    def __init__(self, master: int, requests: list[Request]) -> None:
        super().__init__(daemon=True)
        self.master, self.requests, self.stop = master, requests, threading.Event()
        self.samples: list[tuple[int, int]] = []  # (open requests, RSS kB)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            open_now = sum(1 for r in self.requests if r.outcome == "open")
            self.samples.append((open_now, workers_rss_kb(self.master)))

    def at_peak(self) -> tuple[int, int]:
        return max(self.samples, default=(0, 0))


async def hold_subscriptions(port: int, sessions: list[str], seconds: float, master: int) -> tuple[int, int]:
    """Open an events subscription per session, hold them, return (answered 200, RSS kB while held)."""
    opened: list[asyncio.StreamWriter] = []
    ok = 0

    async def subscribe(sid: str) -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection(HOST, port)
        opened.append(writer)
        writer.write(http_request("GET", f"/api/sessions/{sid}/events", accept="text/event-stream"))
        head = await reader.read(64)
        ok += head.startswith(b"HTTP/1.1 200")

    await bounded([lambda sid=sid: subscribe(sid) for sid in sessions], at_once=200)
    await asyncio.sleep(seconds)
    rss = workers_rss_kb(master)
    for writer in opened:
        writer.close()
    return ok, rss


# --- the case ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, workdir: Path, log: Callable[[str], Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    expected = reply_text(args.pieces)
    model_port = free_port()
    model = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "fake_model.py"),
            "--port",
            str(model_port),
            "--pieces",
            str(args.pieces),
            "--interval",
            str(args.interval),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "fake-model.log", "wb"),  # noqa: SIM115 - lives as long as the process
    )
    try:
        gc_dir = workdir / "gc"
        gc_dir.mkdir(exist_ok=True)
        with RedisServer(workdir / "redis") as redis_server:
            port = free_port()
            env = {
                "CHATAPP_ENV": "production",
                "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
                "CHATAPP_REDIS_URL": redis_server.url,
                "CHATAPP_API_KEYS": KEY,
                "CHATAPP_RATELIMIT_ENABLED": "false",
                "CHATAPP_LLM_BASE_URL": f"http://{HOST}:{model_port}/v1",
                "CHATAPP_LLM_MODEL": MODEL,
                "GUNICORN_BIND": f"{HOST}:{port}",
                "GUNICORN_WORKERS": str(args.workers) if args.workers else None,
                "PROMETHEUS_MULTIPROC_DIR": None,
                "BENCH_GC_DIR": str(gc_dir),
            }
            gunicorn = Path(sys.executable).with_name("gunicorn")
            with AppServer(
                [gunicorn, "-c", ROOT / "bench" / "gc_probe.py", "wsgi:app"],
                port,
                env=env,
                cwd=ROOT,
                log_path=workdir / "gunicorn.log",
                timeout=60,
            ):
                booted = (workdir / "gunicorn.log").read_text()
                master = int(re.search(r"Listening at: \S+ \((\d+)\)", booted).group(1))  # type: ignore[union-attr]
                found["workers"] = booted.count("Booting worker")
                found["worker_class"] = re.search(r"Using worker: (\S+)\"", booted).group(1)  # type: ignore[union-attr]
                meter = CpuMeter(master, {"model": model.pid, "redis": redis_pid(redis_server.port)})
                found.update(uvloop.run(_load(args, port, model_port, meter, expected, log, found)))
            found["gc"] = gc_pauses(gc_dir)
            log(f"    garbage collection per worker (whole run): {found['gc']}")
            found["app_errors"] = app_errors(workdir / "gunicorn.log")
            for message, count in found["app_errors"].most_common(8):
                log(f"    app log: {count:,} x {message}")
    finally:
        model.terminate()
        model.wait(10)
    return found


def gc_pauses(folder: Path) -> str:
    """The workers' garbage-collection pauses (bench/gc_probe.py), in a line."""
    workers = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    if not workers:
        return "not recorded"
    parts = []
    for generation in ("gen0", "gen1", "gen2"):
        each = [worker.get(generation, {"collections": 0, "cpu_seconds": 0.0, "longest_ms": 0.0}) for worker in workers]
        collections = " + ".join(str(e["collections"]) for e in each)
        longest = max(e["longest_ms"] for e in each)
        parts.append(f"{generation} {collections} collections, longest {longest:.0f} ms")
    total = sum(sum(worker[g]["cpu_seconds"] for g in worker) for worker in workers) / len(workers)
    return "; ".join(parts) + f"; {total:.2f} CPU s per worker"


def redis_pid(port: int) -> int:
    """The redis-server listening on ``port`` (tests/servers.py keeps its process to itself)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes()  # redis-server rewrites it: "redis-server 127.0.0.1:<port>"
        except OSError:
            continue
        if b"redis-server" in title and re.search(rb"[:\s]%d\b" % port, title.replace(b"\0", b" ")):
            return int(cmdline.parent.name)
    raise RuntimeError(f"no redis-server on port {port}")


def app_errors(log_path: Path) -> Counter[str]:
    """The app's warnings and errors during the run, by the start of their message."""
    found: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and ('"level":"error"' in line or '"level":"warning"' in line):
            entry = json.loads(line)
            found[f"{entry['level']}: {entry['message'][:100]}"] += 1
    return found


async def _load(
    args: argparse.Namespace,
    port: int,
    model_port: int,
    meter: CpuMeter,
    expected: str,
    log: Callable[[str], Any],
    found: dict[str, Any],
) -> dict[str, Any]:
    """Sessions, a warm-up (so every worker has made its model client), then each phase."""
    n, master = args.streams, meter.master
    warm = 10 * found["workers"]
    sessions = await create_sessions(port, warm + 2 * n + args.subscriptions)
    ramp_sessions, burst_sessions = sessions[warm : warm + n], sessions[warm + n : warm + 2 * n]
    log(f"created {len(sessions):,} sessions; warming up with {warm} replies")
    warmed = await run_load(port, app_bodies(sessions[:warm]), APP_FIRST, APP_ENDS, 1.0)
    if any(r.outcome != "done" for r in warmed):
        raise RuntimeError(f"warm-up failed: {[r.outcome for r in warmed if r.outcome != 'done'][:5]}")
    await asyncio.sleep(1)
    out: dict[str, Any] = {"rss_before": workers_rss_kb(master)}

    meter.start()
    out["direct_ramp"] = await run_load(model_port, model_bodies(n), MODEL_FIRST, MODEL_ENDS, args.ramp)
    log(summary("ramp, straight to the model", out["direct_ramp"]))
    log(meter.line("the ramp straight to the model"))
    await asyncio.sleep(1)

    probe = HealthProbe(port)
    requests = [Request() for _ in range(n)]
    sampler = RssSampler(master, requests)
    probe.start()
    sampler.start()
    meter.start()
    out["ramp"] = await run_load(port, app_bodies(ramp_sessions), APP_FIRST, APP_ENDS, args.ramp, requests)
    probe.stop.set()
    sampler.stop.set()
    probe.join()
    sampler.join()
    out["health"], out["health_failures"] = probe.latencies, probe.failures
    out["rss_peak"] = sampler.at_peak()
    log(summary("ramp, through the app", out["ramp"]))
    log(meter.line("the ramp through the app"))
    log(
        f"    /health during the ramp: {len(probe.latencies)} probes, p50 {quantile(probe.latencies, 0.5):.3f} s, "
        f"p99 {quantile(probe.latencies, 0.99):.3f} s, failures {probe.failures}"
    )
    log(
        f"    workers' RSS: {out['rss_before']:,} kB before, "
        f"{out['rss_peak'][1]:,} kB with {out['rss_peak'][0]:,} streams open"
    )
    out["ramp_whole"] = await stored_whole(port, ramp_sessions, expected)
    await asyncio.sleep(1)

    out["direct_burst"] = await run_load(model_port, model_bodies(n), MODEL_FIRST, MODEL_ENDS, 0)
    log(summary("burst, straight to the model", out["direct_burst"]))
    await asyncio.sleep(1)
    meter.start()
    out["burst"] = await run_load(port, app_bodies(burst_sessions), APP_FIRST, APP_ENDS, 0)
    log(summary("burst, through the app", out["burst"]))
    log(meter.line("the burst through the app"))
    out["burst_whole"] = await stored_whole(port, burst_sessions, expected)

    if args.subscriptions:
        await asyncio.sleep(2)
        idle = workers_rss_kb(master)
        ok, held = await hold_subscriptions(port, sessions[warm + 2 * n :], 5.0, master)
        out["subscriptions"] = (ok, idle, held)
        log(
            f"    {args.subscriptions:,} event subscriptions: {ok:,} answered 200; "
            f"RSS {idle:,} kB idle, {held:,} kB held"
        )
    return out


def summary(what: str, requests: list[Request]) -> str:
    firsts = [r.to_first for r in requests if r.to_first is not None]
    heads = [r.head - r.started for r in requests if r.head is not None]
    outcomes: dict[str, int] = {}
    for r in requests:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    return (
        f"    {what:<32} {len(requests):,} requests: {outcomes}; first piece p50 {quantile(firsts, 0.5):.3f} s, "
        f"p99 {quantile(firsts, 0.99):.3f} s, max {max(firsts, default=math.nan):.3f} s; "
        f"first bytes p50 {quantile(heads, 0.5):.3f} s, p99 {quantile(heads, 0.99):.3f} s"
    )


# --- the report -------------------------------------------------------------------------------


def report(args: argparse.Namespace, found: dict[str, Any], say: Callable[..., Any]) -> bool:
    """The Markdown table, each target of issue 11 marked; True when every one is met."""
    n = args.streams

    def firsts(requests: list[Request]) -> list[float]:
        return [r.to_first for r in requests if r.to_first is not None]

    def done(requests: list[Request]) -> int:
        return sum(r.outcome == "done" for r in requests)

    def mark(ok: bool) -> str:
        return "✅" if ok else "❌"

    def p(values: list[float], q: float) -> str:
        return f"{quantile(values, q):.3f}"

    ramp, direct, burst = firsts(found["ramp"]), firsts(found["direct_ramp"]), firsts(found["burst"])
    gap = quantile(ramp, 0.99) - quantile(direct, 0.99)
    health = found["health"]
    health_p99 = quantile(health, 0.99)
    open_streams, rss_peak = found["rss_peak"]
    grown = rss_peak - found["rss_before"]
    checks = [
        (
            f"ramp: {n:,} streamed replies over {args.ramp:g} s all complete (`done`)",
            f"{done(found['ramp']):,} / {n:,}",
            done(found["ramp"]) == n,
        ),
        (
            "ramp: stored whole (the assistant message is the pieces joined)",
            f"{found['ramp_whole']:,} / {n:,}",
            found["ramp_whole"] == n,
        ),
        (
            "ramp: first piece p99 within 0.5 s of the same ramp straight to the model",
            f"app p50 {p(ramp, 0.5)} s, p99 {p(ramp, 0.99)} s; "
            f"direct p50 {p(direct, 0.5)} s, p99 {p(direct, 0.99)} s: {gap:+.3f} s",
            gap <= 0.5 and len(ramp) == n,
        ),
        (
            "/health p99 during the ramp ≤ 0.5 s",
            f"p50 {p(health, 0.5)} s, p99 {health_p99:.3f} s ({len(health)} probes, {found['health_failures']} failed)",
            health_p99 <= 0.5 and not found["health_failures"],
        ),
        (f"burst: {n:,} at once all complete", f"{done(found['burst']):,} / {n:,}", done(found["burst"]) == n),
        ("burst: stored whole", f"{found['burst_whole']:,} / {n:,}", found["burst_whole"] == n),
        (
            "burst: first piece p99 ≤ 3 s",
            f"p50 {p(burst, 0.5)} s, p99 {p(burst, 0.99)} s "
            f"(straight to the model: p99 {p(firsts(found['direct_burst']), 0.99)} s)",
            quantile(burst, 0.99) <= 3 and len(burst) == n,
        ),
    ]
    say("")
    say(
        f"Concurrency (issue 11): a fake model streaming {args.pieces} pieces {args.interval:g} s apart; "
        f"gunicorn {found['worker_class']}, {found['workers']} workers (the repo's gunicorn.conf.py); "
        f"{os.environ.get('CHATAPP_REDIS_MAX_CONNECTIONS', 'the default')} Redis connections per worker; "
        "rate limiting off; loopback."
    )
    say("")
    say("| target | measured | |")
    say("|---|---|---|")
    for what, measured, ok in checks:
        say(f"| {what} | {measured} | {mark(ok)} |")
    say(
        "| memory: workers' RSS (sum) before the load and at the most streams open | "
        f"{found['rss_before'] / 1024:,.0f} MB before; {rss_peak / 1024:,.0f} MB with {open_streams:,} open: "
        f"{grown / max(open_streams, 1):,.1f} KB per open stream | no target |"
    )
    say(f"| garbage collection: each worker's pauses over the run (bench/gc_probe.py) | {found['gc']} | no target |")
    ok = all(ok for _, _, ok in checks)
    if "subscriptions" in found:
        answered, idle, held = found["subscriptions"]
        per = (held - idle) / max(answered, 1)
        good = answered == args.subscriptions and per <= 50
        ok &= good
        say(
            f"| {args.subscriptions:,} idle event subscriptions, ≤ 50 KB of app memory each | "
            f"{answered:,} answered 200; {per:,.1f} KB each | {mark(good)} |"
        )
    else:
        say(
            "| 2,000 idle event subscriptions, ≤ 50 KB of app memory each | "
            "not run (add `--subscriptions 2000`, or see bench/subscriptions.py) | |"
        )
    return ok
