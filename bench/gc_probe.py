"""gunicorn settings for the bench: the repo's gunicorn.conf.py as it is, plus a probe of each
worker's garbage-collection pauses.

A collection stops the whole worker, every stream on it, so its pauses are part of a stream's
latency. The probe times each one in the worker's CPU time (``time.thread_time``: not
stretched by other processes taking the core) and, as the worker exits, writes a summary
to ``$BENCH_GC_DIR/<pid>.json``: per generation, how many, their total and the longest.

    gunicorn -c bench/gc_probe.py wsgi:app
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import time
from pathlib import Path
from typing import Any

_repo = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({name: value for name, value in _repo.items() if not name.startswith("__")})

_pauses: list[tuple[int, float]] = []  # (generation, CPU seconds)
_started = [0.0]


def _probe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
    else:
        _pauses.append((info["generation"], time.thread_time() - _started[0]))


def post_worker_init(worker: Any) -> None:
    _repo["post_worker_init"](worker)
    gc.callbacks.append(_probe)


def worker_exit(server: Any, worker: Any) -> None:
    _repo["worker_exit"](server, worker)
    folder = os.environ.get("BENCH_GC_DIR")
    if folder:
        summary = {
            f"gen{generation}": {
                "collections": len(seconds),
                "cpu_seconds": round(sum(seconds), 4),
                "longest_ms": round(max(seconds) * 1000, 1),
            }
            for generation in (0, 1, 2)
            if (seconds := [s for g, s in _pauses if g == generation])
        }
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(summary))
