"""Fast checks that the real-server helpers in tests/servers.py do what the suite relies on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

from tests.servers import (
    AppServer,
    RedisCluster,
    RedisServer,
    ServerStartError,
    free_port,
    no_retry,
    require_binary,
)


@pytest.mark.redis
def test_redis_server_stop_and_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as srv:
        assert srv.port != 6379
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        with srv.client() as c:
            c.set("k", "v")
            assert c.get("k") == b"v"
        srv.stop()
        assert not srv.running and not srv.ping()
        with srv.client(retry=no_retry()) as c, pytest.raises(redis.ConnectionError):
            c.ping()
        srv.start()
        with srv.client() as c:
            assert c.ping()


@pytest.mark.redis
def test_redis_server_extra_args_enable_durability(tmp_path: Path) -> None:
    with RedisServer(tmp_path, extra_args=["--appendonly", "yes"]) as srv:
        with srv.client() as c:
            c.set("durable", "1")
        srv.stop()
        srv.start()
        with srv.client() as c:
            assert c.get("durable") == b"1"


@pytest.mark.redis
@pytest.mark.cluster
def test_redis_cluster_spreads_keys_over_masters(tmp_path: Path) -> None:
    keys = [f"{{user{i}}}:session" for i in range(30)]
    with RedisCluster(tmp_path) as cluster:
        assert len(cluster.ports) == 3
        assert cluster.url == f"redis://127.0.0.1:{cluster.ports[0]}/0"
        with cluster.client(decode_responses=True) as rc:
            assert len(rc.get_primaries()) == 3
            for k in keys:
                rc.set(k, k.upper())
            assert all(rc.get(k) == k.upper() for k in keys)
        sizes = []
        for node in cluster.nodes:
            with node.client() as c:
                sizes.append(c.dbsize())
        assert sum(sizes) == len(keys)
        assert sum(1 for n in sizes if n) > 1, sizes


def test_app_server_waits_for_any_http_status(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with AppServer(cmd, port, cwd=tmp_path, log_path=tmp_path / "app.log") as app:
        assert app.base_url == f"http://127.0.0.1:{port}"  # /health is a 404 here: still "up"


def test_app_server_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"]
    with pytest.raises(ServerStartError, match="boom: bad config"):
        AppServer(cmd, free_port(), log_path=tmp_path / "app.log")


def test_require_binary_found() -> None:
    assert Path(require_binary("sh")).is_absolute()


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_require_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="no-such-binary-xyz"):
        require_binary("no-such-binary-xyz")


@pytest.mark.parametrize("ci", [None, "", "0", "false", "FALSE"])
def test_require_binary_skips_locally(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no-such-binary-xyz"):
        require_binary("no-such-binary-xyz")
