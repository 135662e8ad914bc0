"""gunicorn settings for chatapp: ``gunicorn wsgi:app`` reads this file from the working directory.

Every value can be overridden by its environment variable (below) or on the command line.
"""

from __future__ import annotations

import os

_DEFAULT_LLM_TIMEOUT = 60


def _int(names: tuple[str, ...], default: int) -> int:
    """The first of ``names`` set in the environment, as a whole number, else ``default``."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return int(float(value))
            except ValueError:
                raise SystemExit(f"gunicorn.conf.py: {name}={value!r} is not a number") from None
    return default


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers, taskset)
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# Listen on $GUNICORN_BIND, or on all interfaces at $PORT (platforms that set it), or on
# loopback only: put a reverse proxy in front for TLS and buffering rules.
bind = os.environ.get("GUNICORN_BIND") or (
    f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
)

# Threads, not one request per process: a streamed reply waits on the model for seconds
# and must not block other requests. gthread serves each connection on a thread, and the
# worker's main loop keeps its heartbeat going while a stream runs.
worker_class = "gthread"
workers = _int(("GUNICORN_WORKERS", "WEB_CONCURRENCY"), min(2 * _cores() + 1, 12))
threads = _int(("GUNICORN_THREADS",), 8)

# A worker silent for this long is restarted. Longer than one model call, so that a
# reply being generated is never cut by the supervisor before the model's own time-out.
_llm_timeout = _int(("CHATAPP_LLM_TIMEOUT",), _DEFAULT_LLM_TIMEOUT)
timeout = _int(("GUNICORN_TIMEOUT",), max(120, 2 * _llm_timeout))
# On restart or shutdown, streams in flight get this long to finish.
graceful_timeout = _int(("GUNICORN_GRACEFUL_TIMEOUT",), 30)
# Behind a proxy that reuses connections, keep idle ones a little longer than it does.
keepalive = _int(("GUNICORN_KEEPALIVE",), 5)

# Access log to stdout, one JSON object per line, with the request id the app returns;
# the path only (query strings may hold user ids). The app logs its own richer line per
# request too (chatapp/request_log.py); drop one of the two with GUNICORN_ACCESSLOG=none.
accesslog = None if os.environ.get("GUNICORN_ACCESSLOG") == "none" else "-"
access_log_format = (
    '{"event":"access","remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,'
    '"bytes":"%(B)s","duration_ms":%(M)s,"request_id":"%({x-request-id}o)s"}'
)
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Heartbeat files on tmpfs: a worker on a slow or full disk is not taken for a hung one.
# (gunicorn makes them with mkstemp and unlinks them at once, so a shared dir is safe.)
_SHM = "/dev/shm"  # noqa: S108
if os.path.isdir(_SHM):
    worker_tmp_dir = _SHM


# gunicorn 25.1+ opens a control socket for gunicornc at one path per user by default
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl): a second instance on the host
# takes it over from the first, and whichever stops first removes it. Off, unless
# $GUNICORN_CONTROL_SOCKET names this instance's own socket. (Older gunicorns ignore both.)
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
