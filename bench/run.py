#!/usr/bin/env python3
"""chatapp benchmark: one run on loopback, printed as a Markdown table.

Starts its own redis-server and gunicorn (the repo's gunicorn.conf.py) on free ports,
loads 1,000 and then 100,000 sessions, and measures each endpoint with a fixed-duration
concurrent load (wrk when installed, else a keep-alive thread pool). See bench/README.md.

    .venv/bin/python bench/run.py [--duration 5] [--connections 16] [--out bench/results.md]

``--only concurrency`` runs issue 11's case alone instead: many streamed replies at once from a
fake model (bench/concurrency.py). ``--only search`` runs issue 16's (bench/search.py).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import concurrency  # noqa: E402 - bench/concurrency.py, beside this script
import search  # noqa: E402 - bench/search.py, beside this script
from batching import BatchingStore  # noqa: E402 - bench/batching.py, beside this script

from chatapp import create_app  # noqa: E402
from chatapp.storage import make_message  # noqa: E402
from chatapp.storage.lua import all_scripts  # noqa: E402
from chatapp.storage.records import Message  # noqa: E402
from chatapp.storage.sessions import HISTORY_PAGE  # noqa: E402
from tests.servers import AppServer, RedisServer, free_port  # noqa: E402

KEY = "bench-" + secrets.token_urlsafe(16)
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
# The main load takes turns over these two; the other two personas of config/personas.yaml
# are kept for the big cases, so that one holds exactly 50,000 sessions and the other 50.
PERSONAS = ["default", "mental_health_nurse"]


# --- loading data fast, through the store's own code ----------------------------------


def load_sessions(
    client: redis.Redis,
    start: int,
    stop: int,
    messages_each: int = 4,
    user: Callable[[int], str] = lambda i: f"bench user {i // 10}",
    persona: Callable[[int], str] = lambda i: PERSONAS[i % len(PERSONAS)],
) -> list[str]:
    """Sessions start..stop-1 (by default 10 per user, personas in turn), each with a short chat."""
    store = BatchingStore(client, 24 * 3600)
    store.load_scripts()
    ids = []
    for i in range(start, stop):
        store.answer = 1
        session = store.create_session(user(i), persona(i))
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
%(headers)s
%(body)s
request = function()
  local path = %(path)s
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
    headers: dict[str, str] = AUTH,
) -> dict[str, float]:
    script = workdir / "bench.lua"
    body_line = f"wrk.body = {json.dumps(body)}" if body else ""
    header_lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    script.write_text(
        WRK_SCRIPT
        % {"ids": ids_file, "method": method, "headers": header_lines, "body": body_line, "path": json.dumps(path)}
    )
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
    base: str,
    method: str,
    path: str,
    body: str | None,
    ids: list[str],
    duration: float,
    connections: int,
    headers: dict[str, str] = AUTH,
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
                conn.request(method, path.replace("{sid}", random.choice(ids)), body=body, headers=headers)
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


# --- Redis's slow log over the whole bench ---------------------------------------------------


BENCH_OWN_COMMANDS = {"info", "slowlog", "config", "script", "ping", "hello", "client", "command"}


class SlowLog:
    """SLOWLOG of the bench's redis-server, from before the first load to the end.

    Every command that ran 10 ms or longer is logged: a script as its EVALSHA, and (Redis 7)
    each command the script ran as well. Each entry is put down to the phase of the bench it
    fell in (load, measure, ...); INFO commandstats at each phase's end tells what the same
    commands cost on average in that phase, so an outlier shows as one, and the redis-server's
    scheduler statistics (/proc/<pid>/schedstat and status) how long it waited for a CPU
    while it had work: a command that waits for a CPU midway is logged with that wait.
    """

    THRESHOLD_US = 10_000

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        client.config_set("slowlog-log-slower-than", self.THRESHOLD_US)
        client.config_set("slowlog-max-len", 1024)
        client.slowlog_reset()
        self.phases: list[tuple[str, int]] = []  # (phase, id of the newest entry when it ended)
        self.stats: list[dict[str, dict[str, float]]] = [client.info("commandstats")]  # at each phase's end
        self.pid = int(client.info("server")["process_id"])
        self.sched: list[tuple[float, float, int]] = [self._sched()]  # at each phase's end
        self.scripts = {script.sha: name for name, script in all_scripts().items()}

    def _newest_id(self) -> int:
        newest = self.client.slowlog_get(1)
        return int(newest[0]["id"]) if newest else -1

    def mark(self, phase: str) -> None:
        """The phase that just ended."""
        self.phases.append((phase, self._newest_id()))
        self.stats.append(self.client.info("commandstats"))
        self.sched.append(self._sched())

    def _sched(self) -> tuple[float, float, int]:
        """The redis-server's CPU seconds, seconds waited runnable for a CPU, involuntary switches."""
        try:
            run_ns, wait_ns, _ = (int(v) for v in Path(f"/proc/{self.pid}/schedstat").read_text().split())
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (OSError, ValueError):
            return (0.0, 0.0, 0)
        switches = re.search(r"nonvoluntary_ctxt_switches:\s*(\d+)", status)
        return run_ns / 1e9, wait_ns / 1e9, int(switches.group(1)) if switches else 0

    def phase_sched(self) -> list[tuple[float, float, int]]:
        """Per phase: the redis-server's CPU seconds, seconds waited for a CPU, involuntary switches."""
        return [(b[0] - a[0], b[1] - a[1], b[2] - a[2]) for a, b in zip(self.sched[:-1], self.sched[1:], strict=True)]

    def phase_costs(self) -> list[tuple[str, int, float, str]]:
        """Per phase: EVALSHA calls, their mean µs, and the other command with the highest mean µs."""
        rows = []
        for (phase, _), before, after in zip(self.phases, self.stats[:-1], self.stats[1:], strict=True):
            delta = {}
            for name, stat in after.items():
                calls = stat["calls"] - before.get(name, {}).get("calls", 0)
                if calls and name.removeprefix("cmdstat_").split("|")[0] not in BENCH_OWN_COMMANDS:
                    delta[name.removeprefix("cmdstat_")] = (calls, (stat["usec"] - before.get(name, {}).get("usec", 0)))
            calls, usec = delta.get("evalsha", (0, 0))
            inner = {name: cost for name, cost in delta.items() if name not in ("evalsha", "eval")}
            costliest = max(inner.items(), key=lambda item: item[1][1] / item[1][0], default=None)
            top = f"{costliest[0]} {costliest[1][1] / costliest[1][0]:,.0f} µs" if costliest else ""
            rows.append((phase, calls, usec / calls if calls else 0.0, top))
        return rows

    def describe(self, command: str) -> str:
        parts = command.split(" ")
        if parts[0].upper() == "EVALSHA" and len(parts) > 3:
            return f"EVALSHA {self.scripts.get(parts[1], parts[1][:12])}.lua on {parts[3][:60]}"
        return " ".join(parts[:3])[:80]

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, slowest first, with its phase and a readable command."""
        length = int(self.client.slowlog_len())
        found = self.client.slowlog_get(length) if length else []
        for entry in found:
            entry["phase"] = next((name for name, last in self.phases if int(entry["id"]) <= last), "end")
            command = entry["command"]  # bytes even with decode_responses (redis-py 8)
            entry["what"] = self.describe(command.decode(errors="replace") if isinstance(command, bytes) else command)
        return sorted(found, key=lambda entry: -int(entry["duration"]))


# --- the big cases of issue 10, each next to its small twin ---------------------------------

BIG_USER, SMALL_USER = "bench-big-user", "bench-small-user"
BIG_PERSONA, SMALL_PERSONA = "technical_support", "creative_writer"  # used by nothing else here
LONG_OWNER, SHORT_OWNER = "bench-long-owner", "bench-short-owner"
TWIN_SESSIONS = 50  # the small twin of a big user or persona
TWIN_MESSAGES = 100  # the small twin of a long session
MESSAGE_HTML = b'<article class="msg '  # how templates/index.html starts a message


def chat_message(n: int) -> Message:
    """The n-th message of a long chat, a question or an answer of two sentences (~300 B of JSON)."""
    if n % 2 == 0:
        text = f"Question {n}: could you explain how the second step works, and what I should check before it?"
        return make_message("user", text)
    text = f"Answer {n}: save the settings first, then run the second step; the log says when it is done."
    return make_message("assistant", text)


def load_long_session(client: redis.Redis, owner: str, messages: int, batch: int = 1000) -> str:
    """One session of ``owner`` holding ``messages`` messages, appended ``batch`` at a time
    by the store's own append (one script per batch)."""
    store = BatchingStore(client, 24 * 3600)
    store.load_scripts()
    store.answer = 1
    session_id = store.create_session(owner, "default", display_name=f"{messages:,} messages")["session_id"]
    store.answer = None
    for start in range(0, messages, batch):
        store.append_messages(session_id, [chat_message(n) for n in range(start, min(messages, start + batch))])
        if len(store.pipe) >= 10:
            store.flush()
    store.flush()
    return session_id


def load_big_cases(client: redis.Redis, big: int, long: int) -> tuple[str, str]:
    """A user with ``big`` sessions and one with 50; a persona with ``big`` sessions (10 per
    user) and one with 50 (one per user, so its page is merged from most shards too); a session
    with ``long`` messages and one with 100. Answers the long and the short session's ids."""
    load_sessions(client, 0, big, user=lambda i: BIG_USER)
    load_sessions(client, 0, TWIN_SESSIONS, user=lambda i: SMALL_USER)
    load_sessions(client, 0, big, user=lambda i: f"bench persona user {i // 10}", persona=lambda i: BIG_PERSONA)
    load_sessions(
        client, 0, TWIN_SESSIONS, user=lambda i: f"bench small persona user {i}", persona=lambda i: SMALL_PERSONA
    )
    return load_long_session(client, LONG_OWNER, long), load_long_session(client, SHORT_OWNER, TWIN_MESSAGES)


def visitor_headers(secret: str, redis_url: str, user_id: str, session_id: str) -> dict[str, str]:
    """A browser's signed visitor cookie for ``user_id`` with ``session_id`` current, made by
    the app's own session serializer with the secret the gunicorn app runs with (as
    tests/helpers.py (visitor_cookie) makes one)."""
    app = create_app({"SECRET_KEY": secret, "REDIS_URL": redis_url, "TESTING": True})
    cookie = app.session_interface.get_signing_serializer(app).dumps({"user_id": user_id, "current": session_id})
    name = app.config["SESSION_COOKIE_NAME"]
    app.extensions["redis"].close()
    return {"Cookie": f"{name}={cookie}"}


@dataclass(frozen=True)
class Case:
    what: str  # e.g. "50,000 sessions"
    path: str
    headers: dict[str, str]
    expect: str  # what the answer must be (read_answer's description), or text the page must hold


@dataclass
class Pair:
    """A big case and its small twin, measured back to back in every round."""

    name: str
    target: float | None  # the big case's p50 at most this many times the small one's (None: for scale)
    kind: str  # how to read the answer: list, messages or html
    small: Case
    big: Case
    runs: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"small": [], "big": []})
    answers: dict[str, str] = field(default_factory=dict)  # what each answered, checked
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of each answer's body

    @property
    def label(self) -> str:
        return self.name.split(",")[0].split(" (")[0]

    def best(self, side: str) -> dict[str, float]:
        return max(self.runs[side], key=lambda run: run["rps"])

    def ratio(self) -> float:
        return self.best("big")["p50_ms"] / self.best("small")["p50_ms"]

    def round_ratios(self) -> list[float]:
        return [b["p50_ms"] / a["p50_ms"] for a, b in zip(self.runs["small"], self.runs["big"], strict=True)]


def read_answer(base: str, case: Case, kind: str) -> tuple[str, int]:
    """One request of the case: what it answered, checked against what it must be, and its size."""
    request = urllib.request.Request(base + case.path, headers=case.headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        body = response.read()
    if kind == "html":
        described = f"{body.count(MESSAGE_HTML)} messages shown"
        ok = case.expect.encode() in body  # the page shows the owner's session, not a new visitor's
    else:
        data = json.loads(body)
        if kind == "list":
            described = f"count {data['count']:,}, {len(data['sessions'])} shown"
        else:
            described = f"{data['message_count']:,} messages, {len(data['messages'])} shown"
        ok = described == case.expect
    if not ok:
        raise RuntimeError(f"{case.path} answered {described!r}, expected {case.expect!r}")
    return described, len(body)


def gunicorn_workers(master: int) -> list[int]:
    """The pids whose parent is the gunicorn master."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_name = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(after_name[1]) == master:
            children.append(int(stat.parent.name))
    return sorted(children)


def rss_kb(pids: list[int]) -> dict[int, int]:
    """VmRSS of each process, in kB (/proc/<pid>/status)."""
    found = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found[pid] = int(line.split()[1])
    return found


@dataclass
class BigResults:
    big: int
    long: int
    sessions: list[Pair]
    long_session: list[Pair]
    rss: dict[str, dict[int, int]]  # each worker's RSS at the start and after each window, kB
    load_seconds: float
    duration: float


def measure_big(
    args: argparse.Namespace,
    client: redis.Redis,
    base: str,
    run_case: Callable[[Case], dict[str, float]],
    secret: str,
    redis_url: str,
    master: int,
    log: Callable[[str], Any],
    slowlog: SlowLog,
) -> BigResults:
    started = time.perf_counter()
    long_id, short_id = load_big_cases(client, args.big, args.long)
    load_seconds = time.perf_counter() - started
    log(
        f"loaded the big cases ({args.big:,} + {TWIN_SESSIONS} sessions of two users, {args.big:,} + "
        f"{TWIN_SESSIONS} of two personas, {args.long:,} + {TWIN_MESSAGES} messages) in {load_seconds:.1f}s"
    )
    slowlog.mark("load big cases")
    n_big, n_long = f"{args.big:,}", f"{args.long:,}"
    # What each answer must be: a listing's first page of 50; a history by user id, the latest
    # session's chat of 4; a session history, the newest 200 messages (HISTORY_PAGE).
    shown, short_chat = "50 shown", "4 messages, 4 shown"
    history = f"{min(args.long, HISTORY_PAGE)} shown"
    page = "/api/sessions/{}/messages?limit=20"
    sessions = [
        Pair(
            "a user's sessions, `GET /api/sessions?user_id=` (operator)",
            1.5,
            "list",
            Case(f"{TWIN_SESSIONS} sessions", f"/api/sessions?user_id={SMALL_USER}", AUTH, f"count 50, {shown}"),
            Case(f"{n_big} sessions", f"/api/sessions?user_id={BIG_USER}", AUTH, f"count {n_big}, {shown}"),
        ),
        Pair(
            "a persona's sessions, `GET /api/sessions?persona=` (operator, merged over the shards)",
            1.5,
            "list",
            Case(f"{TWIN_SESSIONS} sessions", f"/api/sessions?persona={SMALL_PERSONA}", AUTH, f"count 50, {shown}"),
            Case(f"{n_big} sessions", f"/api/sessions?persona={BIG_PERSONA}", AUTH, f"count {n_big}, {shown}"),
        ),
        Pair(
            "history by user id, `GET /api/session/<user>/history` (operator)",
            1.5,
            "messages",
            Case(f"user with {TWIN_SESSIONS} sessions", f"/api/session/{SMALL_USER}/history", AUTH, short_chat),
            Case(f"user with {n_big} sessions", f"/api/session/{BIG_USER}/history", AUTH, short_chat),
        ),
    ]
    long_session = [
        Pair(
            "session history, `GET /api/session/<sid>/history` (operator)",
            2,
            "messages",
            Case(f"{TWIN_MESSAGES} messages", f"/api/session/{short_id}/history", AUTH, "100 messages, 100 shown"),
            Case(f"{n_long} messages", f"/api/session/{long_id}/history", AUTH, f"{n_long} messages, {history}"),
        ),
        Pair(
            "message page, `GET /api/sessions/<sid>/messages?limit=20` (operator)",
            2,
            "messages",
            Case(f"{TWIN_MESSAGES} messages", page.format(short_id), AUTH, "100 messages, 20 shown"),
            Case(f"{n_long} messages", page.format(long_id), AUTH, f"{n_long} messages, 20 shown"),
        ),
        Pair(
            "the page `GET /` as the session's owner (visitor cookie)",
            2,
            "html",
            Case(f"{TWIN_MESSAGES} messages", "/", visitor_headers(secret, redis_url, SHORT_OWNER, short_id), short_id),
            Case(f"{n_long} messages", "/", visitor_headers(secret, redis_url, LONG_OWNER, long_id), long_id),
        ),
        Pair(  # for scale, no target: the history's default page is 200, so its twin answers half as much
            "session history asking for `?limit=100` (operator; for scale: answers as big as the twin's)",
            None,
            "messages",
            Case(
                f"{TWIN_MESSAGES} messages",
                f"/api/session/{short_id}/history?limit=100",
                AUTH,
                "100 messages, 100 shown",
            ),
            Case(
                f"{n_long} messages",
                f"/api/session/{long_id}/history?limit=100",
                AUTH,
                f"{n_long} messages, 100 shown",
            ),
        ),
    ]
    judged = [pair for pair in long_session if pair.target is not None]

    def check(pair: Pair, side: str) -> None:
        case = pair.small if side == "small" else pair.big
        pair.answers[side], pair.sizes[side] = read_answer(base, case, pair.kind)
        log(f"  {case.what:>26}: {pair.answers[side]}, {pair.sizes[side]:,} B  <- {pair.name}")

    for pair in sessions:
        check(pair, "small")
        check(pair, "big")
    for pair in judged:
        check(pair, "small")  # the long session's after its first reads below

    def rounds(pairs: list[Pair]) -> None:
        # Each pair back to back, the order swapped every round, so a slower stretch of the
        # machine falls on both sides alike.
        for r in range(args.rounds):
            for pair in pairs:
                for side in ("small", "big") if r % 2 == 0 else ("big", "small"):
                    case = pair.small if side == "small" else pair.big
                    measured = run_case(case)
                    pair.runs[side].append(measured)
                    log(
                        f"  {case.what:>26} {measured['rps']:8.0f} req/s  p50 {measured['p50_ms']:6.2f} ms"
                        f"  p99 {measured['p99_ms']:7.2f} ms  errors {measured['errors']}  <- {pair.name}"
                    )

    rounds(sessions)
    slowlog.mark(f"measure {n_big}-session cases")
    # A worker's memory: every worker's RSS before and after hammering the long session's three
    # endpoints the first time anything reads it (one run each), next to the same for its
    # 100-message twin right before (what a run grows a worker by whatever the session's size).
    # A warm-up on the twin first, so neither window counts first-request costs.
    rss: dict[str, dict[int, int]] = {}

    def hammer(window: str, side: str) -> None:
        for pair in judged:
            case = pair.small if side == "small" else pair.big
            measured = run_case(case)
            log(f"  {window}: {case.what}, {measured['rps']:.0f} req/s, errors {measured['errors']}  <- {pair.name}")
            rss[f"{window}: {pair.label}"] = rss_kb(gunicorn_workers(master))
        rss[window] = rss[f"{window}: {judged[-1].label}"]

    rss["start"] = rss_kb(gunicorn_workers(master))
    hammer("warm-up", "small")
    hammer("twin", "small")
    hammer("long", "big")
    for pair in long_session:
        check(pair, "big")
    check(long_session[-1], "small")
    rounds(long_session)
    rss["after the rounds"] = rss_kb(gunicorn_workers(master))
    for name, found in rss.items():
        log(f"  worker RSS after {name}: " + ", ".join(f"{pid}: {kb:,} kB" for pid, kb in found.items()))
    slowlog.mark(f"measure {n_long}-message cases")
    return BigResults(args.big, args.long, sessions, long_session, rss, load_seconds, args.duration)


def report_big(results: BigResults, say: Callable[..., Any]) -> bool:
    """The big cases next to their twins; True when every target is met."""
    mark = lambda ok: "✅" if ok else "❌"  # noqa: E731
    kb = lambda b: f"{b / 1024:,.1f} KB"  # noqa: E731
    all_ok = True
    say("")
    say(
        "Big cases (issue 10), each measured back to back with its small twin in every round "
        "(best round by req/s shown; the ratio is of those two p50s, each round's in brackets):"
    )
    say("")
    say("| case | small twin | p50 ms | req/s | answer | big case | p50 ms | req/s | answer | p50 big/small (rounds) |")
    say("|---|---|---:|---:|---|---|---:|---:|---|---|")
    for pair in results.sessions + results.long_session:
        a, b = pair.best("small"), pair.best("big")
        ratio = pair.ratio()
        errors = sum(run["errors"] for side in ("small", "big") for run in pair.runs[side])
        each = ", ".join(f"{r:.2f}" for r in pair.round_ratios())
        if pair.target is None:
            verdict = f"{ratio:.2f}× ({each}), no target"
        else:
            ok = ratio <= pair.target and errors == 0
            all_ok &= ok
            verdict = f"{mark(ok)} {ratio:.2f}× ≤ {pair.target:g}× ({each})"
        errors_note = f" ({errors} errors)" if errors else ""
        say(
            f"| {pair.name}{errors_note} | {pair.small.what} | {a['p50_ms']:.2f} | {a['rps']:.0f} "
            f"| {pair.answers['small']}, {kb(pair.sizes['small'])} | {pair.big.what} | {b['p50_ms']:.2f} "
            f"| {b['rps']:.0f} | {pair.answers['big']}, {kb(pair.sizes['big'])} | {verdict} |"
        )

    def growth(start: str, end: str) -> dict[int, int]:
        before, after = results.rss[start], results.rss[end]
        return {pid: after[pid] - before[pid] for pid in before if pid in after}

    def kb_list(found: dict[int, int]) -> str:
        return ", ".join(f"{kb_:+,}" for kb_ in found.values()) + " kB"

    judged = [pair for pair in results.long_session if pair.target is not None]

    def by_endpoint(window: str, before: str) -> str:
        """The largest growth of any worker during each endpoint's run of the window."""
        parts = []
        for pair in judged:
            after = f"{window}: {pair.label}"
            parts.append(f"{pair.label} {max(growth(before, after).values()):+,}")
            before = after
        return "; largest per endpoint: " + ", ".join(parts) + " kB"

    long_growth = growth("twin", "long")
    restarted = sorted(set(results.rss["start"]) ^ set(results.rss["after the rounds"]))
    biggest = max(judged, key=lambda pair: pair.sizes["big"])
    page = biggest.sizes["big"]
    worst = max(long_growth.values())
    memory_ok = worst * 1024 <= page and not restarted
    all_ok &= memory_ok
    runs = f"one {results.duration:g} s run of each of the three endpoints"
    say("")
    say("| target | measured | |")
    say("|---|---|---|")
    say(
        f"| a worker's RSS grows by no more than one page of an answer when the {results.long:,}-message "
        f"session is first read ({runs}) | largest growth {worst:+,} kB (each worker: {kb_list(long_growth)}"
        f"{by_endpoint('long', 'twin')}"
        f"{'; workers restarted: ' + str(restarted) if restarted else ''}) vs the largest page, "
        f"{kb(page)} ({biggest.name.split(',')[0]}) | {mark(memory_ok)} |"
    )
    twin = growth("warm-up", "twin")
    say(
        f"| for scale: the same right before, with the {TWIN_MESSAGES}-message twin | largest growth "
        f"{max(twin.values()):+,} kB (each worker: {kb_list(twin)}{by_endpoint('twin', 'warm-up')}) | |"
    )
    total = growth("twin", "after the rounds")
    say(
        f"| for scale: from before the {results.long:,}-message session to after every round of both "
        f"| largest growth {max(total.values()):+,} kB (each worker: {kb_list(total)}); RSS then "
        + ", ".join(f"{kb_ / 1024:,.0f}" for kb_ in results.rss["after the rounds"].values())
        + " MB | |"
    )
    return all_ok


# --- the main cases (issue 6): every endpoint at 1,000 and 100,000 sessions -------------------


ENDPOINTS = [
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


@dataclass
class MainResults:
    results: dict[int, dict[str, dict[str, float]]]
    commands: dict[int, dict[str, float]]
    shares: dict[int, dict[str, list[float]]]
    trips: dict[str, float]


def measure_main(
    args: argparse.Namespace,
    client: redis.Redis,
    redis_url: str,
    base: str,
    loader: str,
    workdir: Path,
    log: Callable[[str], Any],
    slowlog: SlowLog,
) -> MainResults:
    endpoints = ENDPOINTS
    results: dict[int, dict[str, dict[str, float]]] = {}
    commands: dict[int, dict[str, float]] = {}
    shares: dict[int, dict[str, list[float]]] = {}
    ids: list[str] = []
    for size in (args.small, args.large):
        started = time.perf_counter()
        ids += load_sessions(client, len(ids), size)
        log(f"loaded {size:,} sessions in {time.perf_counter() - started:.1f}s")
        slowlog.mark(f"load {size:,}")
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
                measured = run_wrk(base, method, path, body, ids_file, args.duration, args.connections, workdir)
            else:
                measured = run_threads(base, method, path, body, sample, args.duration, args.connections)
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
        slowlog.mark(f"measure {size:,}")
    trips = count_round_trips(redis_url, endpoints, ids)
    slowlog.mark("round trips")
    return MainResults(results, commands, shares, trips)


def report_main(args: argparse.Namespace, main: MainResults, memory: dict[str, float], say: Callable[..., Any]) -> bool:
    """The table of issue 6; True when every target is met."""
    results, commands, shares, trips = main.results, main.commands, main.shares, main.trips
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
    say("")
    say(
        f"| endpoint | req/s @{small:,} | p50 ms | p99 ms | req/s @{large:,} | p50 ms | p99 ms "
        f"| share of /health req/s ≥ 60% | round trips (target) | Redis cmds/req incl. in scripts |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    all_ok = True
    for name, *_ in ENDPOINTS:
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
    every = all(statistics.median(shares[s][n]) >= 0.6 for s in (small, large) for n, *_ in ENDPOINTS)
    all_ok &= every
    say(f"| every endpoint ≥ 60% of /health req/s (median of paired runs, worse size) | see table | {mark(every)} |")
    return all_ok


def report_slowlog(slowlog: SlowLog, slow: list[dict[str, Any]], say: Callable[..., Any]) -> bool:
    mark = lambda ok: "✅" if ok else "❌"  # noqa: E731
    say("")
    say(
        f"SLOWLOG (commands of {SlowLog.THRESHOLD_US // 1000} ms or more; a script is logged as its EVALSHA "
        f"and each command it ran as well), from before the first load to the end: "
        f"{mark(not slow)} {len(slow)} entries."
    )
    if slow:
        say("")
        say("| ms | command | bench phase |")
        say("|---:|---|---|")
        for entry in slow[:10]:
            say(f"| {int(entry['duration']) / 1000:.1f} | `{entry['what']}` | {entry['phase']} |")
    say("")
    say("What the same commands cost on average, per phase (INFO commandstats):")
    say("")
    say(
        "| bench phase | SLOWLOG entries | EVALSHA calls | mean µs per EVALSHA | other command with the highest mean "
        "| redis-server CPU s | s it waited runnable for a CPU | involuntary context switches |"
    )
    say("|---|---:|---:|---:|---|---:|---:|---:|")
    for (phase, calls, mean, top), (cpu, waited, switches) in zip(
        slowlog.phase_costs(), slowlog.phase_sched(), strict=True
    ):
        entries = sum(1 for entry in slow if entry["phase"] == phase)
        say(f"| {phase} | {entries} | {calls:,} | {mean:,.0f} | {top} | {cpu:.1f} | {waited:.1f} | {switches:,} |")
    return not slow


# --- the run --------------------------------------------------------------------------------


def commit(report: Path | None = None) -> str:
    """The commit the bench ran from, marked when the work tree had changes (other than ``report``,
    which the run before this one may have written)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    others = (
        [f":(exclude){report.resolve().relative_to(ROOT)}"] if report and report.resolve().is_relative_to(ROOT) else []
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", *others], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        return "an unknown commit"
    return f"commit `{head.stdout.strip()}`" + (" with uncommitted changes" if dirty.stdout.strip() else "")


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


def write_out(args: argparse.Namespace, report: list[str], raw: list[str], all_ok: bool) -> None:
    """With --out, write the report there; the file's earlier runs stay below it, newest first."""
    if not args.out:
        return
    earlier, marker = "", "\n---\n\n## Earlier runs\n\n"
    if args.out.exists():
        kept = args.out.read_text().removeprefix("# Benchmark results\n").strip()
        if kept:
            latest, _, older = kept.partition(marker.strip() + "\n\n")
            earlier = marker + latest.strip().removesuffix("---").strip() + "\n"
            earlier += f"\n---\n\n{older.strip()}\n" if older.strip() else ""
    args.out.write_text(
        "# Benchmark results\n\n"
        + f"`{' '.join(['bench/run.py', *sys.argv[1:]])}` at {commit(args.out)}, "
        + f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        + f", exit status {0 if all_ok else 1}.\n\n"
        + "\n".join(report)
        + "\n\n## Raw output (every run)\n\n```text\n"
        + "\n".join(raw)
        + "\n```\n"
        + earlier
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint and size; the best is kept")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=50_000, help="sessions of the big user and the big persona")
    parser.add_argument("--long", type=int, default=100_000, help="messages of the long session")
    parser.add_argument(
        "--only",
        choices=("all", "big", "concurrency", "search"),
        default="all",
        help="'big': only the big cases and SLOWLOG (development); 'concurrency': only issue 11's streams case; "
        "'search': only issue 16's search case",
    )
    parser.add_argument("--out", type=Path, help="also write the report here (earlier runs kept below it)")
    concurrency_group = parser.add_argument_group("the concurrency case (--only concurrency)")
    concurrency_group.add_argument(
        "--streams", type=int, default=1_000, help="streamed replies in the ramp and the burst"
    )
    concurrency_group.add_argument("--ramp", type=float, default=2.0, help="seconds over which the ramp starts them")
    concurrency_group.add_argument("--pieces", type=int, default=40, help="pieces the fake model streams per reply")
    concurrency_group.add_argument("--interval", type=float, default=0.1, help="seconds between two pieces")
    concurrency_group.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's)")
    concurrency_group.add_argument(
        "--subscriptions", type=int, default=0, help="idle GET /api/sessions/{id}/events to hold (0: not run)"
    )
    search.add_arguments(parser)
    args = parser.parse_args()
    loader = "wrk" if shutil.which("wrk") else "threads"

    workdir = Path(tempfile.mkdtemp(prefix="chatapp-bench-"))
    report: list[str] = []
    raw: list[str] = []
    say = lambda line="": (print(line, flush=True), report.append(line))  # noqa: E731
    log = lambda line: (print(line, flush=True), raw.append(line))  # noqa: E731
    main_results: MainResults | None = None
    memory: dict[str, float] = {}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    if args.only == "search":
        found = search.run(args, log)
        say(f"Machine: {machine()}")
        say(
            f"Load average (1, 5, 15 min) before the run: {' '.join(load_before)}; after it: "
            f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])} (other engineers' work shares the 2 cores)."
        )
        all_ok = search.report(args, found, say)
        write_out(args, report, raw, all_ok)
        shutil.rmtree(workdir, ignore_errors=True)
        return 0 if all_ok else 1
    if args.only == "concurrency":
        found = concurrency.measure(args, workdir, log)
        say(f"Machine: {machine()}")
        say(
            f"Load average (1, 5, 15 min) before the run: {' '.join(load_before)}; after it, the bench's own "
            f"processes included: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}."
        )
        all_ok = concurrency.report(args, found, say)
        write_out(args, report, raw, all_ok)
        shutil.rmtree(workdir, ignore_errors=True)
        return 0 if all_ok else 1

    with RedisServer(workdir / "redis") as redis_server:
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        slowlog = SlowLog(client)
        secret = secrets.token_urlsafe(32)
        env = {
            "CHATAPP_ENV": "production",
            "CHATAPP_SECRET_KEY": secret,
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
            started_log = (workdir / "gunicorn.log").read_text()
            workers = started_log.count("Booting worker")
            worker_class = re.search(r"Using worker: (\w+)", started_log)
            master_found = re.search(r"Listening at: \S+ \((\d+)\)", started_log)
            if master_found is None:
                raise RuntimeError(f"no gunicorn master pid in its log:\n{started_log}")
            master = int(master_found.group(1))
            if args.only == "all":
                main_results = measure_main(
                    args, client, redis_server.url, app_server.base_url, loader, workdir, log, slowlog
                )
            one_id = workdir / "one-id.txt"
            one_id.write_text("-\n")

            def run_case(case: Case) -> dict[str, float]:
                if loader == "wrk":
                    return run_wrk(
                        app_server.base_url,
                        "GET",
                        case.path,
                        None,
                        one_id,
                        args.duration,
                        args.connections,
                        workdir,
                        case.headers,
                    )
                return run_threads(
                    app_server.base_url, "GET", case.path, None, ["-"], args.duration, args.connections, case.headers
                )

            big = measure_big(
                args, client, app_server.base_url, run_case, secret, redis_server.url, master, log, slowlog
            )
        if args.only == "all":
            memory = memory_per_message(client)
            slowlog.mark("memory per message")
        slow = slowlog.entries()
        client.close()

    say(f"Machine: {machine()}")
    say(
        f"Load: {loader}, {args.connections} connections, best of {args.rounds} runs of {args.duration:g} s "
        f"per endpoint and size; "
        f"gunicorn {worker_class.group(1) if worker_class else 'of an unknown worker class'}, {workers} workers; "
        "rate limiting off; loopback. "
        f"Load average (1, 5, 15 min) before the run: {' '.join(load_before)}; after it, the bench's own "
        f"processes included: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}."
    )
    all_ok = True
    if main_results is not None:
        all_ok &= report_main(args, main_results, memory, say)
    else:
        say("")
        say("(`--only big`: the main cases, round trips and memory per message were not run.)")
    all_ok &= report_big(big, say)
    all_ok &= report_slowlog(slowlog, slow, say)
    write_out(args, report, raw, all_ok)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
