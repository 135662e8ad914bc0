"""gunicorn settings for chatapp: ``gunicorn wsgi:app`` reads this file from the working directory.

Every value can be overridden by its environment variable (below) or on the command line.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn import glogging, util

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
            "path": _text(environ.get("PATH_INFO")),
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


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """With PROMETHEUS_MULTIPROC_DIR set, forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
