"""gunicorn settings for chatapp: ``gunicorn wsgi:app`` reads this file from the working directory.

Every value can be overridden by its environment variable (below) or on the command line.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
from datetime import UTC, datetime
from typing import Any

from gunicorn import glogging, util

_DEFAULT_LLM_TIMEOUT = 60
_OPEN_FILES = 65536  # when the hard limit is unlimited (Linux refuses that as a soft one)
_GC_YOUNG_THRESHOLD = 10_000  # allocations between two collections of the youngest generation (Python: 700)


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

# gevent, not a thread or a process per request: a streamed reply waits on the model for
# seconds to minutes, and an idle event subscription for hours. A greenlet costs kilobytes
# where a thread costs a stack and a process tens of MB, so each worker holds thousands of such
# connections; redis-py, the openai client (httpx), Flask-Limiter and prometheus_client all do
# their I/O through the sockets and locks gevent patches (tests/test_gevent.py checks each).
# GUNICORN_WORKER_CLASS=gthread brings back threads (GUNICORN_THREADS each), e.g. to rule
# gevent out when chasing a problem.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "gevent"
# Greenlets share their worker's one core, so more workers than cores only adds memory (each
# is a whole copy of the app); one spare keeps a core busy while a worker is in a long request.
# Measured on 2 cores (bench/run.py --only concurrency): 5 workers held 407 MB idle against
# 246 MB for 3, and served 1,000 streams no better.
workers = _int(("GUNICORN_WORKERS", "WEB_CONCURRENCY"), min(_cores() + 1, 12))
threads = _int(("GUNICORN_THREADS",), 8)  # gthread only; gevent serves each connection on a greenlet
# Open connections a worker serves at once (gevent and gthread). Sized for ~1,000 streamed
# replies and ~2,000 idle event subscriptions at once, which the kernel does not spread evenly
# over the workers: any one worker may get most of them. Past it a worker stops accepting.
worker_connections = _int(("GUNICORN_WORKER_CONNECTIONS",), 4000)
_ACCEPT_BATCH = max(1, _int(("GUNICORN_ACCEPT_BATCH",), 16))  # gevent: see _accept_in_batches

# A worker silent for this long is restarted. Under gevent a worker is silent only while one
# request holds its core without yielding (or a call blocks that gevent does not patch): model
# and Redis waits yield. Longer than one model call all the same, so that under gthread too a
# reply being generated is never cut by the supervisor before the model's own time-out.
_llm_timeout = _int(("CHATAPP_LLM_TIMEOUT",), _DEFAULT_LLM_TIMEOUT)
timeout = _int(("GUNICORN_TIMEOUT",), max(120, 2 * _llm_timeout))
# On restart or shutdown, streams in flight get this long to finish.
graceful_timeout = _int(("GUNICORN_GRACEFUL_TIMEOUT",), 30)
# Behind a proxy that reuses connections, keep idle ones a little longer than it does. Under
# gevent this is also all the time a client gets to send a request's line and headers (the
# first request's too), which is what sends a slowloris socket away: keep it above 0, which
# turns that limit off.
keepalive = _int(("GUNICORN_KEEPALIVE",), 5)

# Access log to stdout, one JSON object per line, with the request id the app returns;
# the path only (query strings may hold user ids). The app logs its own richer line per
# request too (chatapp/web/request_log.py); drop this one with GUNICORN_ACCESSLOG=none.
# Lines are written by a JSON encoder (JsonLogger below), never by filling in a template:
# a path such as /%1b%5b2J%0aFAKE%0d%00 arrives decoded, with ESC, LF, CR and NUL in it.
accesslog = None if os.environ.get("GUNICORN_ACCESSLOG") == "none" else "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def _json_line(line: dict[str, Any]) -> str:
    """Compact JSON with every control and non-ASCII character escaped."""
    return json.dumps(line, separators=(",", ":"), ensure_ascii=True, default=str)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _path_for_log(path: Any) -> Any:
    from chatapp.web.request_log import loggable_path  # noqa: PLC0415 - the app's own rule; workers have it loaded

    return loggable_path(path) if isinstance(path, str) else path


def _text(value: Any) -> Any:
    """A WSGI string (bytes as Latin-1) read back as the UTF-8 the client sent."""
    if isinstance(value, str):
        try:
            return value.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return value
    return value


class JsonLines(logging.Formatter):
    """gunicorn's own lines (Booting worker, Invalid request from ...) as JSON objects."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _json_line(line)


class JsonLogger(glogging.Logger):
    """gunicorn's logger with both its logs as JSON, the access line built as a dict and encoded."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonLines())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {str(name).lower(): value for name, value in (resp.headers or [])}
        line = {
            "time": _iso(datetime.now(UTC).timestamp()),
            "event": "access",
            "remote": environ.get("REMOTE_ADDR"),
            "method": _text(environ.get("REQUEST_METHOD")),
            # (a share link's token is its whole secret: the log names the link, not the token)
            "path": _path_for_log(_text(environ.get("PATH_INFO"))),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "request_id": headers.get("x-request-id"),
        }
        try:
            self.access_log.info("%s", _json_line(line))
        except Exception:  # a log line must never break a response
            self.exception("access log line failed")


logger_class = JsonLogger


def _json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """What gunicorn answers itself (a request line over limit_request_line: 414; a malformed
    request: 400; too many headers: 431), in the app's error envelope instead of an HTML page."""
    body = _json_line({"error": {"code": status_int, "name": reason, "message": (mesg or reason)[:300]}})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1"))


# gunicorn writes these answers with gunicorn.util.write_error (workers/base.py, handle_error);
# replacing it here, in the master before the workers fork, makes every worker answer JSON.
util.write_error = _json_error

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


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Under gevent, right before the worker starts serving: how it accepts and closes connections.

    Close a client's connection as gunicorn's sync and gthread workers do. Its async workers
    close at once (util.close), and with request bytes still unread (a body over the limit,
    answered 413 before it was all sent) the kernel then resets the connection, so the client
    may never read the answer. util.close_graceful sends FIN and drains the rest first (RFC 9112
    section 9.6); in a greenlet the wait blocks nothing else.

    Accept in batches (_accept_in_batches), and collect garbage in short pauses (_tune_gc).
    """
    if worker.cfg.worker_class_str == "gevent":
        util.close = util.close_graceful
        _accept_in_batches()
    _tune_gc()


def _tune_gc() -> None:
    """Keep the cyclic garbage collector's pauses short in a worker holding many streams.

    A collection stops the whole worker, every stream on it. With 1,000 replies streaming
    (bench/run.py --only concurrency), each worker ran ~350 young and 2-3 full collections,
    the full ones taking 50-95 ms of CPU each (over 250 ms of wall time on the busy machine)
    scanning the app's and libraries' own objects, which live as long as the worker.
    gc.freeze() sets those aside (the app is loaded by now), and a higher threshold for the
    youngest generation lets most short-lived objects go by reference counting before a
    collection looks at them: in the same run no full collection at all, the longest pause
    29 ms, GC CPU per worker 0.39 -> 0.11 s.
    """
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, _GC_YOUNG_THRESHOLD), middle, old)


def _accept_in_batches() -> None:
    """Let each turn of a gevent worker's loop accept up to GUNICORN_ACCEPT_BATCH connections.

    With more than one worker gunicorn has each turn accept one (max_accept = 1), to spread
    connections over the workers. But a turn runs every greenlet that is ready, so with
    hundreds of streams in flight a worker took in a few dozen connections a second, and new
    requests waited in the listen queue for seconds. bench/run.py --only concurrency, 1,000
    replies over 2 s on a shared, noisy machine: accepting one a turn, first piece p99 4-13 s
    (median of five runs 10 s) and /health p99 4-10 s; accepting 16, 2.4 and 5.9 s, and 0.7 and
    3.2 s (100, gevent's own default, let one worker take most of a burst).
    """
    from gevent.server import StreamServer
    from gunicorn.workers import ggevent

    class BatchAcceptingServer(StreamServer):  # type: ignore[misc]
        _batch = _ACCEPT_BATCH

        @property
        def max_accept(self) -> int:
            return self._batch

        @max_accept.setter
        def max_accept(self, value: int) -> None:
            self._batch = max(value, _ACCEPT_BATCH)

    ggevent.StreamServer = BatchAcceptingServer


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Let the workers open as many files as the system allows (they inherit the master's limit).

    Each stream is two sockets (the client's and the model's), and the soft limit is often
    1,024: a worker holding a few hundred streams would fail to accept with EMFILE.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:  # a container may refuse: serve with what there is
            server.log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, exc)


def worker_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """A stopping worker (a restart, a deploy) lets its running replies finish first.

    Replies are jobs that outlive their posters' connections, so gunicorn's own graceful
    wait, which counts connections, may end while some are still being written: they get
    the same time again here, and are stored whole.
    """
    app = getattr(worker, "wsgi", None)
    if app is None or "chatapp.replies" not in getattr(app, "extensions", {}):
        return
    from chatapp.services.replies import drain

    left = drain(app, graceful_timeout)
    if left:
        server.log.warning("worker %s stopped with %d replies unfinished", worker.pid, left)


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
