"""Two ``imhub serve`` on one data directory or port (issue #22, item 6): with the
in-process bus the second one refuses to start — and says how to run several workers
— instead of silently splitting the clients between two processes that cannot reach
each other. Redis-bus servers may share a directory; a local-bus one may not join them.
Real processes, as an operator would start them."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

from tests.conftest import REDIS_URL, port_open, service_unavailable
from tests.serverproc import ServerProcess, free_port


def refused(data_dir: Path, port: int | None = None, **env: str) -> str:
    """Start another server; assert it exits with code 2 by itself; its stderr."""
    other = ServerProcess(data_dir, port=port, **env)
    try:
        r = subprocess.run([sys.executable, "-m", "imhub", "serve"], env=other.env, capture_output=True, timeout=30,
                           check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("the second server did not refuse to start (it is serving)") from exc
    assert r.returncode == 2, r.stderr.decode(errors="replace")[-2000:]
    return r.stderr.decode()


def answers(server: ServerProcess) -> bool:
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as r:
        return bool(r.status == 200)


def redis_env() -> dict[str, str]:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not port_open(host, int(port)):
        service_unavailable("Redis", f"nothing listens on {host_port}")
    return {"IMHUB_BUS": "redis", "IMHUB_REDIS_URL": REDIS_URL, "IMHUB_REDIS_PREFIX": f"t{uuid.uuid4().hex[:10]}"}


def test_a_second_local_bus_server_on_the_same_data_dir_and_port_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data).start()
    try:
        err = refused(data, port=first.port)
        assert "already running on the data directory" in err
        assert "--workers N" in err and "IMHUB_BUS=redis" in err
        assert "Traceback" not in err
        assert answers(first)
    finally:
        first.stop()
    # The lock went with the first server: the directory is free again.
    again = ServerProcess(data, port=first.port).start()
    again.stop()


def test_a_local_bus_server_on_a_taken_port_is_refused(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path / "one").start()
    try:
        err = refused(tmp_path / "two", port=first.port)
        assert f"port {first.port}" in err and "--workers N" in err
        assert answers(first)
    finally:
        first.stop()


def test_redis_bus_servers_share_a_data_dir_but_not_with_a_local_bus_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = redis_env()
    first = ServerProcess(data, **env).start()
    try:
        second = ServerProcess(data, port=first.port, **env).start()  # like --workers, without a supervisor
        try:
            err = refused(data, IMHUB_BUS="local")
            assert "servers with the Redis bus are already running" in err
            assert answers(first) and answers(second)
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_redis_bus_server_is_refused_beside_a_local_bus_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = redis_env()
    first = ServerProcess(data).start()
    try:
        err = refused(data, port=free_port(), **env)
        assert "in-process bus (IMHUB_BUS=local) is running" in err
    finally:
        first.stop()
