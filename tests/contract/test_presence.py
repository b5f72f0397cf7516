"""RedisPresence against a real Redis: several nodes share it; a user is online while
any live node holds one of their connections; a node that stops refreshing stops
counting after its ttl, and a live node withdraws its claims; a node that finds itself
gone from Redis claims its users again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from imhub.bus.presence_redis import RedisPresence
from tests.conftest import REDIS_URL, port_open, service_unavailable

pytestmark = pytest.mark.redis

Nodes = Callable[..., RedisPresence]


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    if not port_open(host, int(port)):
        service_unavailable("Redis", f"nothing listens on {host_port}")
    prefix = f"test-presence-{uuid.uuid4().hex[:8]}"
    made: list[RedisPresence] = []

    def make(name: str, ttl: float = 30.0) -> RedisPresence:
        node = RedisPresence(REDIS_URL, f"{prefix}-{name}", ttl=ttl, prefix=prefix)
        made.append(node)
        return node

    yield make
    for node in made:
        await node.close()
    cleanup = RedisPresence(REDIS_URL, "cleanup", prefix=prefix)
    keys = [k async for k in cleanup.redis.scan_iter(f"{prefix}:*")]
    if keys:
        await cleanup.redis.delete(*keys)
    await cleanup.close()


async def test_online_while_any_node_holds_a_connection(nodes: Nodes) -> None:
    a, b = nodes("a"), nodes("b")
    await a.start()
    await b.start()
    assert await a.connected(1) is True  # came online
    assert await b.connected(1) is False  # already online elsewhere
    assert await a.connected(1) is False  # second connection on the same node
    assert await b.online_among([1, 2]) == {1}
    assert await b.disconnected(1) is False  # still on a
    assert await a.disconnected(1) is False  # still one connection on a
    assert await b.is_online(1) is True
    assert await a.disconnected(1) is True  # last connection anywhere
    assert await b.online_among([1, 2]) == set()


async def test_clean_close_withdraws_claims_at_once(nodes: Nodes) -> None:
    a, b = nodes("a"), nodes("b")
    await a.start()
    await b.start()
    await a.connected(7)
    assert await b.is_online(7)
    await a.close()
    assert not await b.is_online(7)
    assert await b.connected(7) is True


async def test_dead_node_stops_counting_and_is_buried(nodes: Nodes) -> None:
    a, b = nodes("a", ttl=0.6), nodes("b", ttl=0.6)
    await a.start()
    await b.start()
    await a.connected(5)
    await a.connected(6)
    assert await b.online_among([5, 6]) == {5, 6}
    # a "crashes": it stops refreshing and never cleans up.
    assert a._refresher is not None
    a._closing = True  # the flag too: redis-py can absorb a cancel mid-pipeline
    a._refresher.cancel()
    await asyncio.sleep(0.8)
    assert await b.online_among([5, 6]) == set()  # expired: no longer counts
    assert await b.connected(5) is True  # and b's user 5 comes online, not "already"
    await b.refresh()  # b notices a is dead and withdraws its claims
    r = b.redis
    assert await r.smembers(f"{b.prefix}:p:6") == set()
    assert await r.smembers(f"{b.prefix}:p:5") == {b.node_id.encode()}
    assert await r.exists(f"{b.prefix}:n:{a.node_id}") == 0
    assert await r.zscore(f"{b.prefix}:nodes", a.node_id) is None


async def test_node_gone_from_redis_claims_its_users_again(nodes: Nodes) -> None:
    a, b = nodes("a"), nodes("b")
    await a.start()
    await b.start()
    await a.connected(9)
    # As if a had stalled long enough to be buried (or Redis had lost its data).
    await a.redis.delete(f"{a.prefix}:p:9", f"{a.prefix}:n:{a.node_id}")
    await a.redis.zrem(f"{a.prefix}:nodes", a.node_id)
    assert not await b.is_online(9)
    await a.refresh()
    assert await b.is_online(9)
    assert await a.redis.smembers(f"{a.prefix}:n:{a.node_id}") == {b"9"}


async def test_refresh_cost_does_not_grow_with_users(nodes: Nodes) -> None:
    """One node heartbeat per period, not one command per user: a refresh with many
    users connected leaves the users' keys untouched."""
    a = nodes("a")
    await a.start()
    for uid in range(100, 400):
        await a.connected(uid)
    before = (await a.redis.info("stats"))["total_commands_processed"]
    await a.refresh()
    after = (await a.redis.info("stats"))["total_commands_processed"]
    # Two commands (ZADD + ZRANGEBYSCORE) plus whatever else this shared Redis ran
    # meanwhile; per-user refreshing would be 300+.
    assert after - before < 100
