#!/usr/bin/env python3
"""Importing a 20 MB ChatGPT export of 1,000 conversations through the app (issue 14).

Writes a ChatGPT ``conversations.json`` of 1,000 conversations (about 20 MB: each a mapping of
~40 nodes with a hidden system node, a regenerated answer on a side branch, an image part now and
then, and a ``current_node``), starts its own redis-server and ``gunicorn wsgi:app`` with the
repo's gunicorn.conf.py and one worker (so that worker serves the import), and posts the file to
``POST /api/import`` as an operator. It measures the request's wall time and the worker's memory:
``VmRSS`` before, ``VmHWM`` (the most it ever held resident) and ``VmRSS`` after, from
``/proc/<pid>/status``. Targets: ≤ 30 s, and the worker's peak no more than 100 MB above its
resident size before the import.

    .venv/bin/python bench/imports.py [--conversations 1000] [--out bench/import-results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import AppServer, RedisServer, free_port  # noqa: E402

KEY = "bench-import-key"
TARGET_SECONDS = 30
TARGET_GROWTH_MB = 100
WORDS = (
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "for",
    "on",
    "with",
    "as",
    "this",
    "be",
    "are",
    "was",
    "at",
    "by",
    "from",
    "or",
    "an",
    "not",
    "have",
    "can",
    "plan",
    "trip",
    "code",
    "python",
    "function",
    "data",
    "question",
    "answer",
    "because",
    "which",
    "would",
    "could",
    "should",
    "where",
    "when",
    "Kyoto",
    "Zürich",
    "café",
    "naïve",
    "東京",
    "日本語",
    "☕",
    "🚀",
)


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def node(node_id: str, parent: str | None, children: list[str], message: dict | None) -> dict:
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def message(node_id: str, role: str, content: dict, when: float, **metadata: object) -> dict:
    return {
        "id": node_id,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": when,
        "update_time": None,
        "content": content,
        "status": "finished_successfully",
        "end_turn": role == "assistant",
        "weight": 1.0,
        "metadata": {"request_id": secrets.token_hex(8), "timestamp_": "absolute", **metadata},
        "recipient": "all",
    }


def conversation(rng: random.Random, index: int, turns: int, words: int) -> dict:
    """One conversation: system node, ``turns`` exchanges, a regenerated answer on a side branch."""
    start = 1_690_000_000 + index * 3600
    mapping = {"root": node("root", None, ["sys"], None)}
    system = message("sys", "system", {"content_type": "text", "parts": [""]}, start)
    system["metadata"]["is_visually_hidden_from_conversation"] = True
    mapping["sys"] = node("sys", "root", [], system)
    parent, when = "sys", float(start)
    for turn in range(turns):
        user_id, answer_id = f"u{turn}", f"a{turn}"
        parts: list[object] = [text(rng, words)]
        if turn == 1 and index % 5 == 0:
            parts.insert(0, {"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-x"})
        content = {"content_type": "multimodal_text" if len(parts) > 1 else "text", "parts": parts}
        mapping[parent]["children"].append(user_id)
        mapping[user_id] = node(user_id, parent, [], message(user_id, "user", content, when + 1))
        answer = message(answer_id, "assistant", {"content_type": "text", "parts": [text(rng, words)]}, when + 2)
        answer["metadata"]["model_slug"] = "gpt-4o"
        mapping[user_id]["children"].append(answer_id)
        mapping[answer_id] = node(answer_id, user_id, [], answer)
        if turn == turns // 2:  # the answer before it was regenerated: a branch the import leaves out
            old = f"a{turn}-old"
            mapping[user_id]["children"].insert(0, old)
            mapping[old] = node(
                old, user_id, [], message(old, "assistant", {"content_type": "text", "parts": ["x"]}, when)
            )
        parent, when = answer_id, when + 60
    return {
        "title": f"Conversation {index}: {text(rng, 4)}",
        "create_time": float(start),
        "update_time": when,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": parent,
        "conversation_id": f"conv-{index}",
        "id": f"conv-{index}",
        "default_model_slug": "gpt-4o",
    }


def write_file(path: Path, conversations: int, size_mb: float) -> int:
    """The export, one conversation at a time; words per message chosen to reach ``size_mb``."""
    rng = random.Random(14)
    sample = len(json.dumps(conversation(random.Random(14), 0, 18, 60), ensure_ascii=False).encode())
    fixed = len(json.dumps(conversation(random.Random(14), 0, 18, 0), ensure_ascii=False).encode())
    words = max(10, int(60 * (size_mb * 1_000_000 / conversations - fixed) / (sample - fixed)))
    with path.open("w", encoding="utf-8") as file:
        file.write("[")
        for index in range(conversations):
            file.write(("," if index else "") + json.dumps(conversation(rng, index, 18, words), ensure_ascii=False))
        file.write("]")
    return path.stat().st_size


def status_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def worker_of(master: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    raise RuntimeError("no gunicorn worker found")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--size-mb", type=float, default=20.5, help="the file's size, roughly")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chatapp-import-bench-"))
    export = workdir / "conversations.json"
    size = write_file(export, args.conversations, args.size_mb)
    lines: list[str] = []
    say = lambda line="": (print(line, flush=True), lines.append(line))  # noqa: E731
    with RedisServer(workdir / "redis") as redis_server:
        port = free_port()
        env = {
            "CHATAPP_ENV": "production",
            "CHATAPP_SECRET_KEY": secrets.token_urlsafe(32),
            "CHATAPP_REDIS_URL": redis_server.url,
            "CHATAPP_API_KEYS": KEY,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
            "PROMETHEUS_MULTIPROC_DIR": None,
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        log = workdir / "gunicorn.log"
        with AppServer([gunicorn, "wsgi:app"], port, env=env, cwd=ROOT, log_path=log, timeout=60) as server:
            started = log.read_text()
            master = int(re.search(r"Listening at: \S+ \((\d+)\)", started).group(1))  # type: ignore[union-attr]
            worker_class = re.search(r"Using worker: (\w+)", started)
            worker = worker_of(master)
            urllib.request.urlopen(f"{server.base_url}/health").read()  # noqa: S310 - warm: first request's imports
            before = status_kb(worker)
            request = urllib.request.Request(  # noqa: S310 - our own server
                f"{server.base_url}/api/import?user_id=bench-importer",
                data=export.open("rb"),
                method="POST",
                headers={
                    "Authorization": f"Bearer {KEY}",
                    "Content-Type": "application/json",
                    "Content-Length": str(size),
                },
            )
            clock = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
                answer = json.loads(response.read())
            seconds = time.perf_counter() - clock
            after = status_kb(worker)
        client = redis.Redis(port=redis_server.port, decode_responses=True)
        stored = sum(int(client.hget(key, "message_count") or 0) for key in client.scan_iter("chatapp:v2:*:s:*"))
    growth_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    time_ok, memory_ok = seconds <= TARGET_SECONDS, growth_mb <= TARGET_GROWTH_MB
    mark = lambda ok: "✅" if ok else "❌"  # noqa: E731
    say("# Import of a ChatGPT export")
    say()
    say(f"`bench/imports.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {len(os.sched_getaffinity(0))} cores.")
    say()
    kind = worker_class.group(1) if worker_class else "?"
    say(f"One gunicorn worker ({kind}, the repo's gunicorn.conf.py) on its own redis-server; a ChatGPT")
    say(f"`conversations.json` of {args.conversations:,} conversations, {size / 1e6:.1f} MB, posted as the body.")
    say()
    say("| what | measured | target | |")
    say("|---|---:|---:|---|")
    imported_ok = answer["imported"] == args.conversations
    done = f"{answer['imported']:,} sessions, {stored:,} messages; {len(answer['skipped'])} skipped"
    say(f"| imported | {done} | {args.conversations:,} | {mark(imported_ok)} |")
    say(f"| time of the request | {seconds:.1f} s | ≤ {TARGET_SECONDS} s | {mark(time_ok)} |")
    say(f"| worker RSS before | {before['VmRSS'] / 1024:.1f} MB | | |")
    say(f"| worker peak (VmHWM) during | {after['VmHWM'] / 1024:.1f} MB | | |")
    say(f"| growth: peak − RSS before | {growth_mb:.1f} MB | ≤ {TARGET_GROWTH_MB} MB | {mark(memory_ok)} |")
    say(f"| worker RSS after | {after['VmRSS'] / 1024:.1f} MB | | |")
    all_ok = time_ok and memory_ok and imported_ok
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
