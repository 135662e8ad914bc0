#!/usr/bin/env python3
"""chatapp benchmark: one run on loopback, printed as a Markdown table.

Starts its own redis-server and gunicorn (the repo's gunicorn.conf.py) on free ports,
loads 1,000 and then 100,000 sessions, and measures each endpoint with a fixed-duration
concurrent load (wrk when installed, else a keep-alive thread pool). See bench/README.md.

    .venv/bin/python bench/run.py [--duration 5] [--connections 16] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatapp import create_app  # noqa: E402
from chatapp.storage import SessionStore, make_message  # noqa: E402
from tests.servers import AppServer, RedisServer, free_port  # noqa: E402

KEY = "bench-" + secrets.token_urlsafe(16)
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
PERSONAS = ["default", "mental_health_nurse", "technical_support", "creative_writer"]


# --- loading data fast, through the store's own code ----------------------------------


class BatchingStore(SessionStore):
    """The real SessionStore, with its round trips queued on one shared pipeline.

    Bulk loading then writes exactly the keys, scripts and indexes the app writes,
    thousands per round trip instead of one.
    """

    def __init__(self, client: redis.Redis, timeout_seconds: int) -> None:
        super().__init__(client, timeout_seconds)
        self.pipe = client.pipeline(transaction=False)
        self.answer: Any = 1

    def _round_trip(self, build: Callable[[Any], None]) -> list[Any]:
        build(self.pipe)
        return [self.answer]

    def flush(self) -> None:
        for result in self.pipe.execute(raise_on_error=False):
            if isinstance(result, Exception):
                raise result


def load_sessions(client: redis.Redis, start: int, stop: int, messages_each: int = 4) -> list[str]:
    """Sessions start..stop-1 (10 per user, personas in turn), each with a short chat."""
    store = BatchingStore(client, 24 * 3600)
    store.load_scripts()
    ids = []
    for i in range(start, stop):
        store.answer = 1
        session = store.create_session(f"bench user {i // 10}", PERSONAS[i % len(PERSONAS)])
        ids.append(session["session_id"])
        store.answer = None
        chat = []
        for n in range(messages_each // 2):
            chat += [
                make_message("user", f"Question {n} about item {i}: how does this work?"),
                make_message("assistant", f"Answer {n}: it works like this, step by step, for item {i}."),
            ]
        store.append_messages(session["session_id"], chat)
        if len(store.pipe) >= 4000:
            store.flush()
    store.flush()
    return ids


# --- load generation ------------------------------------------------------------------------


WRK_SCRIPT = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Content-Type"] = "application/json"
%(body)s
request = function()
  local path = "%(path)s"
  path = path:gsub("{sid}", ids[math.random(#ids)])
  return wrk.format(nil, path)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH %%d %%d %%d %%f %%f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    base: str,
    method: str,
    path: str,
    body: str | None,
    ids_file: Path,
    duration: float,
    connections: int,
    workdir: Path,
) -> dict[str, float]:
    script = workdir / "bench.lua"
    body_line = f"wrk.body = {json.dumps(body)}" if body else ""
    script.write_text(WRK_SCRIPT % {"ids": ids_file, "method": method, "key": KEY, "body": body_line, "path": path})
    threads = min(2, connections)
    seconds = f"{max(1, round(duration))}s"
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}", "--timeout", "10s", "-s", str(script), base],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    out = out.stdout
    match = re.search(r"BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    requests, bad_status, socket_errors = (int(match.group(i)) for i in (1, 2, 3))
    return {
        "requests": requests,
        "rps": requests / duration,
        "p50_ms": float(match.group(4)) / 1000,
        "p99_ms": float(match.group(5)) / 1000,
        "errors": bad_status + socket_errors,
    }


def run_threads(
    base: str, method: str, path: str, body: str | None, ids: list[str], duration: float, connections: int
) -> dict[str, float]:
    """Fallback without wrk: keep-alive connections on threads (the GIL caps it lower)."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine: list[float] = []
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                conn.request(method, path.replace("{sid}", random.choice(ids)), body=body, headers=AUTH)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "errors": errors[0],
    }


# --- round trips, counted on the wire in-process ---------------------------------------------


class CountingConnection(redis.Connection):
    round_trips = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).round_trips += 1
        super().send_packed_command(command, check_health)


def count_round_trips(redis_url: str, endpoints: list[tuple[str, str, str, str | None]], ids: list[str]) -> dict:
    logging.getLogger("chatapp.request").setLevel(logging.WARNING)  # this app's request lines are noise here
    app = create_app(
        {
            "REDIS_URL": redis_url,
            "API_KEYS": KEY,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "REDIS_OPTIONS": {"connection_class": CountingConnection},
        }
    )
    client = app.test_client()
    result = {}
    for name, method, path, body in endpoints:

        def once(name=name, method=method, path=path, body=body) -> None:
            response = client.open(path.replace("{sid}", random.choice(ids)), method=method, data=body, headers=AUTH)
            assert response.status_code < 400, (name, response.status_code, response.get_data(as_text=True))

        once()  # warm: connection open, scripts cached
        before = CountingConnection.round_trips
        for _ in range(20):
            once()
        result[name] = (CountingConnection.round_trips - before) / 20
    app.extensions["redis"].close()
    return result


# --- memory per message -----------------------------------------------------------------


def memory_per_message(client: redis.Redis, sessions: int = 200, per_session: int = 100) -> dict[str, float]:
    store = BatchingStore(client, 24 * 3600)
    store.load_scripts()
    ids = []
    for i in range(sessions):
        store.answer = 1
        ids.append(store.create_session(f"memory user {i}", "default")["session_id"])
    store.flush()
    before = client.info("memory")["used_memory"]
    json_bytes = 0
    store.answer = None
    for n in range(per_session):
        for sid in ids:
            role = "user" if n % 2 == 0 else "assistant"
            text = (
                f"Message {n} in a realistic chat: a sentence or two of ordinary prose, "
                f"{'asking about the weather tomorrow' if role == 'user' else 'answering with care and detail'}."
            )
            message = make_message(role, text)
            json_bytes += len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
            store.append_messages(sid, [message])
        store.flush()
    after = client.info("memory")["used_memory"]
    count = sessions * per_session
    return {"messages": count, "json_bytes": json_bytes / count, "redis_bytes": (after - before) / count}


# --- the run --------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return (
        f"{os.cpu_count()} CPU(s), {cpu}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; Redis {redis_version.removeprefix('v=')}; "
        f"redis-py {redis.__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint and size; the best is kept")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    loader = "wrk" if shutil.which("wrk") else "threads"

    workdir = Path(tempfile.mkdtemp(prefix="chatapp-bench-"))
    report: list[str] = []
    raw: list[str] = []
    say = lambda line="": (print(line, flush=True), report.append(line))  # noqa: E731
    log = lambda line: (print(line, flush=True), raw.append(line))  # noqa: E731

    with RedisServer(workdir / "redis") as redis_server:
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        env = {
            "CHATAPP_ENV": "production",
            "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
            "CHATAPP_REDIS_URL": redis_server.url,
            "CHATAPP_API_KEYS": KEY,
            "CHATAPP_RATELIMIT_ENABLED": "false",
            "GUNICORN_BIND": f"127.0.0.1:{(port := free_port())}",
            "PROMETHEUS_MULTIPROC_DIR": None,
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with AppServer(
            [gunicorn, "wsgi:app"], port, env=env, cwd=ROOT, log_path=workdir / "gunicorn.log", timeout=60
        ) as app_server:
            with urllib.request.urlopen(f"{app_server.base_url}/health") as response:  # noqa: S310
                assert json.loads(response.read())["status"] == "ok"
            workers = (workdir / "gunicorn.log").read_text().count("Booting worker")
            endpoints = [
                ("GET /health", "GET", "/health", None),
                ("GET list", "GET", "/api/sessions", None),
                ("GET history", "GET", "/api/session/{sid}/history", None),
                ("GET message page", "GET", "/api/sessions/{sid}/messages?limit=20", None),
                ("POST message", "POST", "/api/sessions/{sid}/messages", json.dumps({"content": "How are you?"})),
                (
                    "POST create",
                    "POST",
                    "/api/session/create",
                    json.dumps({"user_id": "bench creator", "persona": "default"}),
                ),
            ]
            results: dict[int, dict[str, dict[str, float]]] = {}
            commands: dict[int, dict[str, float]] = {}
            shares: dict[int, dict[str, list[float]]] = {}
            ids: list[str] = []
            for size in (args.small, args.large):
                started = time.perf_counter()
                ids += load_sessions(client, len(ids), size)
                log(f"loaded {size:,} sessions in {time.perf_counter() - started:.1f}s")
                ids_file = workdir / "ids.txt"
                sample = random.sample(ids, min(len(ids), 5000))
                ids_file.write_text("\n".join(sample) + "\n")
                results[size], commands[size], shares[size] = {}, {}, {}

                def measure(
                    name: str,
                    method: str,
                    path: str,
                    body: str | None,
                    size: int = size,
                    ids_file: Path = ids_file,
                    sample: list[str] = sample,
                ) -> float:
                    stats_before = client.info("stats")["total_commands_processed"]
                    if loader == "wrk":
                        measured = run_wrk(
                            app_server.base_url, method, path, body, ids_file, args.duration, args.connections, workdir
                        )
                    else:
                        measured = run_threads(
                            app_server.base_url, method, path, body, sample, args.duration, args.connections
                        )
                    stats_after = client.info("stats")["total_commands_processed"]
                    log(
                        f"  {size:>7,} {name:<18} {measured['rps']:8.0f} req/s  p50 {measured['p50_ms']:6.2f} ms"
                        f"  p99 {measured['p99_ms']:7.2f} ms  errors {measured['errors']}"
                    )
                    best = results[size].get(name)
                    if best is None or measured["rps"] > best["rps"]:
                        results[size][name] = measured
                        commands[size][name] = (stats_after - stats_before) / max(1, measured["requests"])
                    if best is not None:
                        results[size][name]["errors"] = max(best["errors"], measured["errors"])
                    return measured["rps"]

                # Rounds over all endpoints, keeping each one's best run: on a shared machine
                # other processes only ever slow a run down. Each endpoint's share of /health
                # throughput compares it with a /health run right after it (median over rounds),
                # so a busy neighbour does not skew the comparison.
                for _ in range(args.rounds):
                    for name, method, path, body in endpoints[1:]:
                        rps = measure(name, method, path, body)
                        health_rps = measure(*endpoints[0])
                        shares[size].setdefault(name, []).append(rps / health_rps)
                shares[size][endpoints[0][0]] = [1.0]
            trips = count_round_trips(redis_server.url, endpoints, ids)
        memory = memory_per_message(client)
        client.close()

    small, large = args.small, args.large
    targets = {
        "GET /health": 1,
        "GET list": 2,
        "GET history": 1,
        "GET message page": 1,
        "POST message": 2,
        "POST create": 1,
    }
    mark = lambda ok: "✅" if ok else "❌"  # noqa: E731

    say(f"Machine: {machine()}")
    say(
        f"Load: {loader}, {args.connections} connections, best of {args.rounds} runs of {args.duration:g} s "
        f"per endpoint and size; "
        f"gunicorn gthread, {workers} workers x 8 threads; rate limiting off; loopback."
    )
    say("")
    say(
        f"| endpoint | req/s @{small:,} | p50 ms | p99 ms | req/s @{large:,} | p50 ms | p99 ms "
        f"| share of /health req/s ≥ 60% | round trips (target) | Redis cmds/req incl. in scripts |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    all_ok = True
    for name, *_ in endpoints:
        a, b = results[small][name], results[large][name]
        share = min(statistics.median(shares[small][name]), statistics.median(shares[large][name]))
        rt_ok = trips[name] <= targets[name]
        share_ok = share >= 0.6
        all_ok &= rt_ok and share_ok and a["errors"] == 0 and b["errors"] == 0
        errors = "" if a["errors"] == b["errors"] == 0 else f" ({a['errors']}/{b['errors']} errors)"
        say(
            f"| {name}{errors} | {a['rps']:.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {b['rps']:.0f} "
            f"| {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {mark(share_ok)} {share:.0%} "
            f"| {mark(rt_ok)} {trips[name]:g} ({targets[name]}) | {commands[large][name]:.1f} |"
        )
    list_a, list_b = results[small]["GET list"], results[large]["GET list"]
    ratio = list_b["p50_ms"] / list_a["p50_ms"]
    ratio99 = list_b["p99_ms"] / list_a["p99_ms"]
    mem_ratio = memory["redis_bytes"] / memory["json_bytes"]
    all_ok &= ratio <= 1.5 and mem_ratio <= 2
    say("")
    say("| target | measured | |")
    say("|---|---|---|")
    say(
        f"| list latency at {large:,} within 1.5× of {small:,} (p50) | {ratio:.2f}× "
        f"(p99 {ratio99:.2f}×) | {mark(ratio <= 1.5)} |"
    )
    say(
        f"| Redis memory per message ≤ 2× its JSON | {memory['redis_bytes']:.0f} B vs {memory['json_bytes']:.0f} B "
        f"JSON = {mem_ratio:.2f}× ({memory['messages']:,} messages) | {mark(mem_ratio <= 2)} |"
    )
    every = all(statistics.median(shares[s][n]) >= 0.6 for s in (small, large) for n, *_ in endpoints)
    say(f"| every endpoint ≥ 60% of /health req/s (median of paired runs, worse size) | see table | {mark(every)} |")
    if args.out:
        args.out.write_text(
            "# Benchmark results\n\n"
            + "\n".join(report)
            + "\n\n## Raw output (every run)\n\n```text\n"
            + "\n".join(raw)
            + "\n```\n"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
