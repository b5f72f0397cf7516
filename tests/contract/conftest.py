"""Redis shards for the bus and presence contract suites: the shared Redis plus two
private ``redis-server`` processes (started once per test session), so every Redis
test runs on one shard and on three. And two users on a fresh PostgreSQL database,
for the tests of its locking and connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore
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


@dataclass
class PgUsers:
    db: Database
    store: MessageStore
    a: int
    b: int


@pytest.fixture
async def pg_users(postgres_url: str) -> AsyncIterator[PgUsers]:
    """A fresh, migrated PostgreSQL database with users ``a`` and ``b`` and its
    message store; disposed of after the test."""
    await migrate(postgres_url)
    db = Database(postgres_url)
    try:
        users = UserStore(db)
        a = (await users.create(mobile="13800000001", passwd_hash="h")).id
        b = (await users.create(mobile="13800000002", passwd_hash="h")).id
        yield PgUsers(db, MessageStore(db), a, b)
    finally:
        await db.dispose()
