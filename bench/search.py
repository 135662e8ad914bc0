"""Issue 16's search case (``bench/run.py --only search``). See bench/README.md.

- Loads, through the store's own scripts (so the index is written as the app writes it), a
  visitor with ``--search-sessions`` sessions of ``--search-messages`` messages of ordinary chat
  text (1,000 x 100 = 100,000 by default) and one with a tenth of each (100 x 10).
- Latency: each query sent one at a time (so the numbers are a query's own time, end to end:
  HTTP, gunicorn, the view, the script, the snippets) as the visitor, with its signed cookie:
  one word seen in many sessions, one in few, two words, and a word nobody wrote.
- Memory: MEMORY USAGE (every sample) of the big visitor's index keys against that of its
  messages' lists.
- Posting: POST /api/sessions/{id}/messages (offline reply: two messages stored per request)
  with wrk, 16 connections, on this checkout and on ``--search-baseline`` (a git revision,
  ``HEAD`` by default, exported with git archive, its index parts made no-ops: the same code
  keeping no index), rounds alternating; the verdict compares the rounds' medians.
- ``--search-server stack`` runs it all on the Redis Stack server, where the app uses the
  Redis Query Engine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from batching import BatchingStore

from chatapp import create_app
from chatapp.storage import make_message, search_engine
from chatapp.storage.keys import messages_key, shard_of_user, shard_prefix
from tests.servers import HOST, AppServer, RedisServer, free_port, redis_stack_server

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-" + secrets.token_urlsafe(16)
# The posting baseline's engine parts: the same code with nobody keeping an index (what a post
# costs without search), since main has moved on a long way from the commit before search.
NO_INDEX = """-- bench/search.py's posting baseline: no search index is kept.
search.add = function() end
search.title = function() end
search.clear = function() end
search.drop = function() end
search.forget = function() end
"""
BIG_USER, SMALL_USER = "bench-search-big", "bench-search-small"

# Ordinary chat: function words most of the time, then everyday and technical topics, each
# drawn with a Zipf-like weight; every session leans on a few topics of its own.
COMMON = (  # noqa: SIM905 - a word list reads best as prose
    "the a to and of i you it is in that for this be on with have can do not are your what if so but we my "
    "as at or how just will an me about would like from there all get one should they which use when more some "
    "also make need was by then here any could know want think see way time well good now into first new sure "
    "right thing try yes no thanks please help maybe because only other after before much very really still"
).split()
TOPICS = (  # noqa: SIM905 - a word list reads best as prose
    "project database server deploy python script error file code test data model function query index page "
    "account email meeting report budget plan travel flight hotel dinner recipe garden paint bike running "
    "training weather book movie music guitar piano lesson homework essay exam teacher student school kitchen "
    "oven bread pasta sauce coffee tea breakfast lunch market price invoice customer contract lawyer doctor "
    "appointment medicine sleep stress anxiety exercise yoga walk dog cat vet insurance car repair engine tire "
    "battery phone laptop screen keyboard printer network router password backup cloud storage release branch "
    "merge commit review ticket sprint deadline manager team interview resume salary holiday beach mountain "
    "camping tent map route train ticket museum ticket concert birthday gift party wedding dress shoes jacket "
    "winter summer spring autumn rain snow wind sunset photo camera lens video editing podcast article blog "
    "newsletter marketing design logo color font layout website domain hosting certificate security login "
    "session cache memory latency bandwidth container cluster kubernetes docker pipeline build compiler library "
    "package version update install config setting option feature bug fix patch issue question answer idea "
    "story character chapter poem letter speech slide chart table spreadsheet formula column row filter sort"
).split()
# Each topic word also comes as -s, -ed, -ing and -er (wrong English, a realistic vocabulary).
FORMS = [word + ending for word in TOPICS for ending in ("", "s", "ed", "ing", "er")]
QUERIES = [  # (label, query): picked so the first two differ in how many sessions hold them
    ("one word, in most sessions", "project"),
    ("one word, in fewer sessions", "kubernetes"),
    ("two words", "database error"),
    ("two words, a phrase", '"the project"'),
    ("no match", "zyzzyvaquark"),
]


def _weights(n: int) -> list[float]:
    return [1 / (rank + 1) for rank in range(n)]


class ChatText:
    """Deterministic ordinary chat text."""

    def __init__(self, seed: int = 16) -> None:
        self.rng = random.Random(seed)
        self.common_w = _weights(len(COMMON))
        self.topic_w = _weights(len(FORMS))

    def session_topics(self) -> list[str]:
        return self.rng.sample(TOPICS, 6)

    def sentence(self, topics: list[str]) -> str:
        words = []
        for _ in range(self.rng.randint(6, 18)):
            roll = self.rng.random()
            if roll < 0.6:
                words.append(self.rng.choices(COMMON, self.common_w)[0])
            elif roll < 0.8:
                words.append(self.rng.choice(topics))
            elif roll < 0.96:
                words.append(self.rng.choices(FORMS, self.topic_w)[0])
            else:  # times, amounts, years
                words.append(str(self.rng.randint(0, 2100)))
        return " ".join(words).capitalize() + self.rng.choice([".", ".", ".", "?", "!"])

    def message(self, n: int, topics: list[str]) -> dict[str, Any]:
        if n % 2 == 0:
            return make_message("user", " ".join(self.sentence(topics) for _ in range(self.rng.randint(1, 2))))
        return make_message("assistant", " ".join(self.sentence(topics) for _ in range(self.rng.randint(2, 5))))


def load_user(client: redis.Redis, user: str, sessions: int, messages: int, text: ChatText) -> list[str]:
    store = BatchingStore(client, 30 * 24 * 3600)
    store.load_scripts()
    ids = []
    for _ in range(sessions):
        store.answer = 1
        sid = store.create_session(user, "default")["session_id"]
        ids.append(sid)
        store.answer = None
        topics = text.session_topics()
        store.append_messages(sid, [text.message(n, topics) for n in range(messages)], announced=False)
        if len(store.pipe) >= 40:
            store.flush()
    store.flush()
    return ids


def visitor_cookie(secret: str, redis_url: str, user_id: str) -> str:
    app = create_app({"SECRET_KEY": secret, "REDIS_URL": redis_url, "TESTING": True})
    cookie = app.session_interface.get_signing_serializer(app).dumps({"user_id": user_id})
    name = app.config["SESSION_COOKIE_NAME"]
    app.extensions["redis"].close()
    return f"{name}={cookie}"


def latencies(port: int, cookie: str, q: str, n: int, warmup: int = 20) -> dict[str, Any]:
    """``n`` searches one after another on a keep-alive connection: p50, p99 (ms), the count."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    path = "/api/search?" + urllib.parse.urlencode({"q": q})
    taken, count = [], None
    for i in range(warmup + n):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        if i >= warmup:
            taken.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"search {q!r} answered {response.status}: {body[:300]!r}")
        count = json.loads(body)["count"]
    conn.close()
    taken.sort()
    return {"p50": statistics.median(taken), "p99": taken[min(len(taken) - 1, int(len(taken) * 0.99))], "count": count}


def _usage(client: redis.Redis, keys: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    return sum(int(v or 0) for v in pipe.execute())


def memory(client: redis.Redis, user: str, ids: list[str], engine: str) -> dict[str, int]:
    """Bytes (MEMORY USAGE, every sample) of the user's messages and of the user's index.

    On the Query Engine, the index is the user's documents (the title's and the sealed message
    blocks'), the tails of newest messages beside them, and the engine's own index over them
    (FT.INFO: its inverted index, offsets, document table and tags), counted whole: it holds
    every user's, so this is an upper bound."""
    prefix = shard_prefix(shard_of_user(user))
    found = {"messages": _usage(client, [messages_key(sid) for sid in ids])}
    if engine == search_engine.QUERY_ENGINE:
        sealed = client.hmget(prefix + "x:qn", ids)
        docs = [prefix + f"x:q:{sid}:t" for sid in ids] + [prefix + f"x:qt:{sid}" for sid in ids]
        for sid, blocks in zip(ids, sealed, strict=True):
            docs += [prefix + f"x:q:{sid}:{block}" for block in range(int(blocks or 0))]
        info = client.ft(search_engine.INDEX).info()
        engine_bytes = int(float(info["total_index_memory_sz_mb"]) * 1024 * 1024)
        return found | {
            "docs": (docs_bytes := _usage(client, docs)),
            "index": docs_bytes + engine_bytes,
            "index_keys": len(docs),
            "words": int(info["num_terms"]),
            "engine_bytes": engine_bytes,
        }
    number = client.hget(prefix + "x:users", user)
    index_keys = [prefix + f"x:{kind}:{number}" for kind in ("d", "n", "f", "wi", "wt")]
    index_keys += [prefix + f"x:{kind}:{sid}" for sid in ids for kind in ("b", "t")]
    words = int(client.hlen(prefix + f"x:wi:{number}"))
    return found | {"index": _usage(client, index_keys), "index_keys": len(index_keys), "words": words}


def posting(base_port: int, ids_file: Path, duration: float, workdir: Path) -> dict[str, float]:
    """wrk POSTs a message (offline reply) to a random loaded session, 16 connections."""
    from run import run_wrk  # bench/run.py, beside this script  # noqa: PLC0415

    body = json.dumps({"content": "Could you check the database backup before the release on Friday?"})
    return run_wrk(
        f"http://{HOST}:{base_port}",
        "POST",
        "/api/sessions/{sid}/messages",
        body,
        ids_file,
        duration,
        16,
        workdir,
        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )


def session_cpu_seconds(session: int) -> float:
    """CPU seconds (user and system, with reaped children's) so far of every process in a
    session: a server started in its own session and its workers."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == session:  # (after the name: state, ppid, pgrp, session, ...)
            ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def redis_cpu_seconds(client: redis.Redis) -> float:
    """Redis's CPU seconds so far, its children's included: the Query Engine collects its
    garbage in a forked child (no child runs otherwise: the bench's servers never save)."""
    cpu = client.info("cpu")
    return sum(float(cpu[f"used_cpu_{kind}"]) for kind in ("user", "sys", "user_children", "sys_children"))


def export_baseline(revision: str, workdir: Path) -> Path:
    """The baseline revision's tree, exported with git archive (nothing checked out in place),
    its search index parts replaced by NO_INDEX."""
    target = workdir / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    scripts = target / "chatapp" / "storage" / "scripts"
    for part in ("search_index.lua", "search_index_ft.lua"):
        (scripts / part).write_text(NO_INDEX)
    return target


def measure(args: argparse.Namespace, workdir: Path, log: Callable[[str], Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"latency": {}, "posting": {"this": [], "baseline": []}}
    text = ChatText()
    secret = secrets.token_urlsafe(32)
    server = redis_stack_server if args.search_server == "stack" else RedisServer
    with server(workdir / "redis") as redis_server:
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        found["engine"] = search_engine.choose(client)
        log(f"search engine: {found['engine']}")
        started = time.perf_counter()
        big = load_user(client, BIG_USER, args.search_sessions, args.search_messages, text)
        found["load_big_s"] = time.perf_counter() - started
        small = load_user(client, SMALL_USER, args.search_sessions // 10, args.search_messages // 10, text)
        log(
            f"loaded {len(big):,} x {args.search_messages} and {len(small):,} x {args.search_messages // 10} "
            f"messages in {found['load_big_s']:.0f} s (the big one)"
        )
        found["memory"] = memory(client, BIG_USER, big, found["engine"])
        found["memory_small"] = memory(client, SMALL_USER, small, found["engine"])
        log(f"memory: {found['memory']}")

        def env(port: int) -> dict[str, str | None]:
            return {
                "CHATAPP_ENV": "production",
                "CHATAPP_SECRET_KEY": secret,
                "CHATAPP_REDIS_URL": redis_server.url,
                "CHATAPP_API_KEYS": KEY,
                "CHATAPP_RATELIMIT_ENABLED": "false",
                "GUNICORN_BIND": f"{HOST}:{port}",
                "PROMETHEUS_MULTIPROC_DIR": None,
                "PYTHONDONTWRITEBYTECODE": "1",
            }

        gunicorn = [sys.executable, "-m", "gunicorn", "wsgi:app"]
        cookies = {
            who: visitor_cookie(secret, redis_server.url, user)
            for who, user in (("big", BIG_USER), ("small", SMALL_USER))
        }
        port = free_port()
        with AppServer(gunicorn, port, env=env(port), cwd=ROOT, log_path=workdir / "app.log", timeout=60):
            for label, q in QUERIES:
                for who in ("big", "small"):
                    client.config_resetstat()
                    result = latencies(port, cookies[who], q, args.search_queries)
                    evalsha = client.info("commandstats").get("cmdstat_evalsha", {})
                    result["redis_mean"] = evalsha.get("usec_per_call", 0) / 1000  # the search script's own time
                    found["latency"][(label, who)] = result
                    log(f"{label:30} {who:5} p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, {result['count']}")

        # Posting: fresh sessions to post to, then rounds alternating with the baseline.
        post_ids = load_user(client, "bench-search-poster", 200, 4, text)
        ids_file = workdir / "post-ids.txt"
        ids_file.write_text("\n".join(post_ids) + "\n")
        baseline = export_baseline(args.search_baseline, workdir)
        for round_ in range(args.rounds):
            for side, cwd in (
                (("this", ROOT), ("baseline", baseline))
                if round_ % 2 == 0
                else (("baseline", baseline), ("this", ROOT))
            ):
                port = free_port()
                with AppServer(
                    gunicorn, port, env=env(port), cwd=cwd, log_path=workdir / f"post-{side}.log", timeout=60
                ) as app:
                    client.config_resetstat()
                    app_cpu, redis_cpu = session_cpu_seconds(app.pid or 0), redis_cpu_seconds(client)
                    result = posting(port, ids_file, args.duration, workdir)
                    app_cpu = session_cpu_seconds(app.pid or 0) - app_cpu
                    redis_cpu = redis_cpu_seconds(client) - redis_cpu
                    evalsha = client.info("commandstats").get("cmdstat_evalsha", {})
                    requests = max(1, result["requests"])
                    result["redis_us_per_post"] = evalsha.get("usec", 0) / requests
                    result["cpu_us_per_post"] = (app_cpu + redis_cpu) / requests * 1e6
                    result["redis_cpu_us_per_post"] = redis_cpu / requests * 1e6
                found["posting"][side].append(result)
                log(
                    f"posting round {round_ + 1} {side:8} {result['rps']:7.1f} req/s, "
                    f"p50 {result['p50_ms']:.1f} ms, errors {result['errors']}, "
                    f"{result['cpu_us_per_post']:.0f} µs CPU per post (app and Redis), "
                    f"{result['redis_cpu_us_per_post']:.0f} µs of it Redis's"
                )
        client.close()
    return found


def report(args: argparse.Namespace, found: dict[str, Any], say: Callable[..., Any]) -> bool:
    ok = True
    sessions, messages = args.search_sessions, args.search_messages
    say("")
    say(
        f"Search (issue 16), engine `{found['engine']}`: a visitor with {sessions:,} sessions x {messages} messages "
        f"({sessions * messages:,} messages of ordinary chat text) and one with {sessions // 10:,} x {messages // 10}; "
        f"each query sent {args.search_queries} times one after another as the visitor (its cookie), "
        "end to end through gunicorn; targets for the big visitor: p50 <= 50 ms, p99 <= 150 ms."
    )
    say("")
    say(
        "| query | sessions found (big / small) | big p50 | big p99 | small p50 | small p99 "
        "| in Redis, mean (big / small) | target |"
    )
    say("|---|---|---|---|---|---|---|---|")
    for label, q in QUERIES:
        big, small = found["latency"][(label, "big")], found["latency"][(label, "small")]
        met = big["p50"] <= 50 and big["p99"] <= 150
        phrase = q.startswith('"')
        ok &= met or phrase
        verdict = "for scale" if phrase else ("✅" if met else "❌")
        say(
            f"| {label}: `{q}` | {big['count']:,} / {small['count']:,} | {big['p50']:.1f} ms | {big['p99']:.1f} ms "
            f"| {small['p50']:.1f} ms | {small['p99']:.1f} ms | {big['redis_mean']:.1f} / {small['redis_mean']:.1f} ms "
            f"| {verdict} |"
        )
    mem = found["memory"]
    ratio = mem["index"] / mem["messages"]
    ok &= ratio <= 1.5
    say("")
    small = found["memory_small"]
    if "engine_bytes" in mem:  # the Query Engine: its documents, and its own index of every user's
        parts = f" (its documents {mem['docs'] / 1e6:.1f} MB, the engine's index {mem['engine_bytes'] / 1e6:.1f} MB)"
        small_said = f"its documents {small['docs'] / 1e6:.2f} MB (the engine's index is counted with the big one's)"
    else:
        parts, small_said = "", f"{small['index'] / 1e6:.2f} MB"
    say(
        f"Index memory (MEMORY USAGE, every sample), big visitor: {mem['index'] / 1e6:.1f} MB{parts} "
        f"in {mem['index_keys']:,} keys "
        f"({mem['words']:,} distinct words) against {mem['messages'] / 1e6:.1f} MB of messages: "
        f"{ratio:.2f}x {'✅' if ratio <= 1.5 else '❌'} (target <= 1.5x). Small visitor: "
        f"{small_said} against {small['messages'] / 1e6:.2f} MB."
    )
    posts = found["posting"]
    this_rps = statistics.median(r["rps"] for r in posts["this"])
    base_rps = statistics.median(r["rps"] for r in posts["baseline"])
    # The verdict: CPU per post (the app's processes and Redis, wrk aside), the rounds' medians.
    # What a post costs decides how many the 2 cores take; req/s over a few seconds also
    # moves with whatever else the machine runs (here a round may run 50% faster than the
    # others, on either side), so it is shown beside, not judged.
    this_cpu = statistics.median(r["cpu_us_per_post"] for r in posts["this"])
    base_cpu = statistics.median(r["cpu_us_per_post"] for r in posts["baseline"])
    within = base_cpu / this_cpu >= 0.9
    ok &= within
    rounds = ", ".join(
        f"{a['rps']:.0f}/{b['rps']:.0f} req/s, {a['cpu_us_per_post']:.0f}/{b['cpu_us_per_post']:.0f} µs"
        for a, b in zip(posts["this"], posts["baseline"], strict=True)
    )
    say("")
    say(
        f"Posting a message (offline reply), wrk, 16 connections, {args.duration:g} s, {args.rounds} rounds "
        f"alternating with `{args.search_baseline}` keeping no index. CPU per post (the app's processes and "
        f"Redis), median: {this_cpu:.0f} µs with the index, {base_cpu:.0f} µs without, so the cores take "
        f"{base_cpu / this_cpu:.0%} as many posts {'✅' if within else '❌'} (target >= 90%). Throughput, median: "
        f"{this_rps:.0f} req/s with the index, {base_rps:.0f} without ({this_rps / base_rps:.0%}). "
        f"Each round (this/baseline): {rounds}."
    )
    inside = [min(r["redis_us_per_post"] for r in found["posting"][side]) for side in ("this", "baseline")]
    say(
        f"Time inside Redis per post (its scripts, INFO commandstats, the best round): {inside[0]:.0f} µs with the "
        f"index, {inside[1]:.0f} µs without; the rest of a post's time is the app's (HTTP, view, offline reply)."
    )
    return ok


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the search case (--only search)")
    group.add_argument("--search-sessions", type=int, default=1_000, help="sessions of the big visitor")
    group.add_argument("--search-messages", type=int, default=100, help="messages per session of the big visitor")
    group.add_argument("--search-queries", type=int, default=200, help="times each query is sent")
    group.add_argument(
        "--search-baseline",
        default="HEAD",
        help="git revision to post to without the index (its index parts made no-ops), against this checkout",
    )
    group.add_argument(
        "--search-server",
        choices=("redis", "stack"),
        default="redis",
        help="Debian's redis-server (the built-in index) or the Redis Stack server (the Redis Query Engine)",
    )


def run(args: argparse.Namespace, log: Callable[[str], Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatapp-search-bench-") as workdir:
        return measure(args, Path(workdir), log)
