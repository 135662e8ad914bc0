#!/usr/bin/env python3
"""Idle live-channel subscriptions: app memory per open ``GET /api/sessions/{id}/events``,
and the Redis connections they hold (none of their own).

Starts its own redis-server and the app under the repo's gunicorn.conf.py (gevent workers),
opens N subscriptions (2,000 by default, each on its own session and socket), and reads the
workers' memory (PSS from /proc/<pid>/smaps_rollup, so pages shared with the master after
the fork are counted once) and Redis's client count before and while they are held. Then
it posts a message to a sample of the sessions and checks that each subscriber got it.

    .venv/bin/python bench/subscriptions.py [--subscriptions 2000] [--out bench/subscriptions-results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatapp.settings import DEFAULTS  # noqa: E402
from tests.servers import AppServer, RedisServer, free_port, repo_gunicorn_cmd  # noqa: E402

KEY = "bench-" + secrets.token_urlsafe(16)
BUDGET_KB = 50  # the ceiling of app memory per idle subscription
SAMPLE = 50  # sessions posted to, to prove the subscriptions are live
POOL = DEFAULTS["REDIS_MAX_CONNECTIONS"]  # each worker's bounded pool, by default


def workers_of(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


def call(port: int, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310 - our own server on loopback
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


async def subscribe(port: int, sid: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/sessions/{sid}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"subscription refused: {head[:80]!r}")
    await reader.readuntil(b"\n\n")  # the first chunk (`retry:`): the worker is now holding it
    return reader, writer


async def hold(port: int, sids: list[str], measure) -> dict:  # type: ignore[no-untyped-def]
    streams = []
    for start in range(0, len(sids), 200):  # in waves, so the accept queue never overflows
        streams += await asyncio.gather(*(subscribe(port, sid) for sid in sids[start : start + 200]))
    await asyncio.sleep(2)  # settle
    held = measure()
    # Alive: a message to each of a sample reaches its subscriber.
    sample = list(range(0, len(sids), max(1, len(sids) // SAMPLE)))[:SAMPLE]
    for n in sample:
        await asyncio.to_thread(call, port, "POST", f"/api/sessions/{sids[n]}/messages", {"content": f"ping {n}"})
    delivered = 0
    for n in sample:
        reader = streams[n][0]
        deadline = time.monotonic() + 10
        text = b""
        while b"ping" not in text and time.monotonic() < deadline:
            text += await asyncio.wait_for(reader.read(65536), timeout=10)
        delivered += f"ping {n}".encode() in text
    for _, writer in streams:
        writer.close()
    return {**held, "sample": len(sample), "delivered": delivered}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.subscriptions + 1024)), hard))

    with tempfile.TemporaryDirectory(prefix="bench-subs-") as tmp, RedisServer(Path(tmp)) as redis_server:
        port = free_port()
        env = {
            "CHATAPP_REDIS_URL": redis_server.url,
            "CHATAPP_API_KEYS": KEY,
            "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
            "CHATAPP_RATELIMIT_ENABLED": "false",
            "CHATAPP_LLM_BASE_URL": None,
            "CHATAPP_LLM_MODEL": None,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ACCESSLOG": "none",
            "PROMETHEUS_MULTIPROC_DIR": None,
        }
        log = Path(tmp) / "app.log"
        with AppServer(repo_gunicorn_cmd(), port, env=env, cwd=ROOT, log_path=log) as app:
            master = app._proc._proc.pid  # type: ignore[union-attr]
            sids = [
                call(port, "POST", "/api/session/create", {"user_id": f"listener {n}"})["session_id"]
                for n in range(args.subscriptions)
            ]
            with redis_server.client() as direct:

                def measure() -> dict:
                    return {
                        "pss_kb": sum(pss_kb(pid) for pid in workers_of(master)),
                        "redis_clients": int(direct.info("clients")["connected_clients"]) - 1,
                    }

                asyncio.run(hold(port, sids[:20], lambda: {}))  # warm every worker's code paths up
                time.sleep(1)
                before = measure()
                during = asyncio.run(hold(port, sids, measure))
            workers = len(workers_of(master))

    per_kb = (during["pss_kb"] - before["pss_kb"]) / args.subscriptions
    memory_ok = per_kb <= BUDGET_KB
    live_ok = during["delivered"] == during["sample"]
    mark = {True: "✅", False: "❌"}
    before_mb, during_mb = before["pss_kb"] / 1024, during["pss_kb"] / 1024
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| idle subscriptions held at once | {args.subscriptions:,} |",
        f"| workers (gunicorn.conf.py default) | {workers} |",
        f"| workers' PSS before / while held | {before_mb:.1f} MB / {during_mb:.1f} MB |",
        f"| **app memory per subscription** | **{per_kb:.1f} KB** (target ≤ {BUDGET_KB} KB) {mark[memory_ok]} |",
        f"| Redis connections before / while held | {before['redis_clients']} / {during['redis_clients']} "
        f"(the pools' bound: {workers} workers × {POOL}, reached while {args.subscriptions:,} joined at once; "
        "a held subscription has none of its own) |",
        f"| live: a message to {during['sample']} of them reached its subscriber "
        f"| {during['delivered']} of {during['sample']} {mark[live_ok]} |",
    ]
    table = "\n".join(rows)
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"
    command = f".venv/bin/python bench/subscriptions.py --subscriptions {args.subscriptions}"
    text = f"# Idle subscriptions ({time.strftime('%Y-%m-%d')}, {machine})\n\n`{command}`\n\n{table}\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if memory_ok and live_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
