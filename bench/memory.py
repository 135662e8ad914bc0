#!/usr/bin/env python3
"""Memory a request costs a worker, for a session of 100 and of 100,000 messages (issue 10).

Worker RSS moves by megabytes whatever a request reads (allocator arenas, thread stacks), so it
cannot tell whether reading a long session keeps a page's worth (tens of KB) or more. This runs
the app in-process, as a worker does, against its own redis-server, and traces every Python
allocation (tracemalloc) over 50 requests of each endpoint that reads a session: what stays
allocated afterwards (retained) and the most at any moment (peak). The target: a worker's memory
grows by no more than one page of the answer for reading the 100,000-message session, that is,
it retains at most one page more than reading the 100-message twin (the control: the same
requests retain a few KB of caches and logging whatever the session). Peaks are shown for scale:
while a request runs it holds its page, as any request does.

    .venv/bin/python bench/memory.py [--out bench/memory-results.md]
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatapp import create_app  # noqa: E402
from chatapp.storage import SessionStore, make_message  # noqa: E402
from tests.helpers import visitor_cookie  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

SIZES = (100, 100_000)
REQUESTS = 50


def fill(store: SessionStore, owner: str, count: int) -> str:
    sid = store.create_session(owner, "default")["session_id"]
    for start in range(0, count, 1000):
        chunk = range(start, min(count, start + 1000))
        store.append_messages(
            sid, [make_message("user", f"Message {i}: a sentence or two of a long talk.") for i in chunk]
        )
    return sid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the app's request lines would bury the table
    lines: list[str] = []
    say = lambda line="": (print(line, flush=True), lines.append(line))  # noqa: E731
    ok = True
    with RedisServer(Path(tempfile.mkdtemp(prefix="chatapp-memory-"))) as server:
        app = create_app({"REDIS_URL": server.url, "TESTING": True, "RATELIMIT_ENABLED": False})
        user_id, cookie, _ = visitor_cookie(app)
        with redis.Redis(port=server.port, decode_responses=True) as client:
            store = SessionStore(client, 3600)
            sessions = {size: fill(store, user_id, size) for size in SIZES}
        browser = app.test_client()
        browser.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        say(f"In-process app on its own redis-server; {REQUESTS} requests of each endpoint, as the session's owner.")
        say("")
        say("| endpoint | messages in the session | answer | retained after all | peak during | |")
        say("|---|---:|---:|---:|---:|---|")
        for name, path in (
            ("history", "/api/session/{sid}/history"),
            ("message page", "/api/sessions/{sid}/messages?limit=20"),
            ("the page `GET /`", "/?session={sid}"),
        ):
            measured = {}
            for size, sid in sessions.items():
                url = path.format(sid=sid)
                for _ in range(3):  # warm: connections, scripts, templates
                    browser.get(url)
                gc.collect()
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
                answer = max(len(browser.get(url).data) for _ in range(REQUESTS))
                gc.collect()
                current, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                measured[size] = (answer, current - base, peak - base)
            small, big = measured[SIZES[0]], measured[SIZES[1]]
            page = big[0]
            fine = big[1] <= small[1] + page
            ok &= fine
            for size in SIZES:
                answer, retained, peak = measured[size]
                verdict = ("✅" if fine else "❌") if size == SIZES[1] else ""
                say(
                    f"| {name} | {size:,} | {answer / 1024:.1f} KB | {retained / 1024:+.1f} KB | "
                    f"{peak / 1024:.1f} KB | {verdict} |"
                )
        from chatapp.storage import close_store

        close_store(app)
    say("")
    say(
        f"Target: reading the {SIZES[1]:,}-message session retains at most one page of its answer more than "
        f"reading the {SIZES[0]}-message twin: {'✅ met' if ok else '❌ missed'}."
    )
    if args.out:
        header = f"# Memory per request\n\n`bench/memory.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
        args.out.write_text(header + "\n".join(lines) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
