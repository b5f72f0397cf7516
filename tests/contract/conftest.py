"""Redis shards for the bus and presence contract suites: the shared Redis plus two
private ``redis-server`` processes (started once per test session), so every Redis
test runs on one shard and on three."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, port_open, service_unavailable
from tests.redisproc import RedisServer


def require_redis(url: str) -> None:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not port_open(host, int(port)):
        service_unavailable("Redis", f"nothing listens on {host_port}")


@pytest.fixture(scope="session")
def extra_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """URLs of two more Redis servers, for three shards with the shared one."""
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    servers = [RedisServer(tmp_path_factory.mktemp("shard")).start() for _ in range(2)]
    yield [s.url for s in servers]
    for s in servers:
        s.stop()


@pytest.fixture(params=[1, 3], ids=["1shard", "3shards"])
def redis_urls(request: pytest.FixtureRequest) -> list[str]:
    """The shared Redis alone, or it and two more: every Redis contract runs on both."""
    require_redis(REDIS_URL)
    if request.param == 1:
        return [REDIS_URL]
    return [REDIS_URL, *request.getfixturevalue("extra_redis")]
