"""RedisPresence against a real Redis: several nodes share it; a user is online while
any live node holds one of their connections; a node that stops refreshing stops
counting after its ttl, and a live node withdraws its claims; a node that finds itself
gone from Redis claims its users again. Every test runs on one Redis and on three
shards; a shard outage only touches the presence of its own users."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from imhub.bus.presence_redis import RedisPresence
from tests.conftest import service_unavailable
from tests.redisproc import RedisServer

pytestmark = pytest.mark.redis

Nodes = Callable[..., RedisPresence]


@pytest.fixture
async def nodes(redis_urls: list[str]) -> AsyncIterator[Nodes]:
    prefix = f"test-presence-{uuid.uuid4().hex[:8]}"
    made: list[RedisPresence] = []

    def make(name: str, ttl: float = 30.0) -> RedisPresence:
        node = RedisPresence(redis_urls, f"{prefix}-{name}", ttl=ttl, prefix=prefix)
        made.append(node)
        return node

    yield make
    for node in made:
        await node.close()
    cleanup = RedisPresence(redis_urls, "cleanup", prefix=prefix)
    for shard in range(len(redis_urls)):
        r = cleanup.client(shard)
        keys = [k async for k in r.scan_iter(f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
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
    assert await b.client_for(6).smembers(f"{b.prefix}:p:6") == set()
    assert await b.client_for(5).smembers(f"{b.prefix}:p:5") == {b.node_id.encode()}
    for shard in range(len(b.urls)):  # on every shard
        r = b.client(shard)
        assert await r.exists(f"{b.prefix}:n:{a.node_id}") == 0
        assert await r.zscore(f"{b.prefix}:nodes", a.node_id) is None


async def test_node_gone_from_redis_claims_its_users_again(nodes: Nodes) -> None:
    a, b = nodes("a"), nodes("b")
    await a.start()
    await b.start()
    await a.connected(9)
    # As if a had stalled long enough to be buried (or Redis had lost its data).
    r = a.client_for(9)
    await r.delete(f"{a.prefix}:p:9", f"{a.prefix}:n:{a.node_id}")
    await r.zrem(f"{a.prefix}:nodes", a.node_id)
    assert not await b.is_online(9)
    await a.refresh()
    assert await b.is_online(9)
    assert await r.smembers(f"{a.prefix}:n:{a.node_id}") == {b"9"}


async def test_refresh_cost_does_not_grow_with_users(nodes: Nodes) -> None:
    """One node heartbeat per period, not one command per user: a refresh with many
    users connected leaves the users' keys untouched."""
    a = nodes("a")
    await a.start()
    for uid in range(100, 400):
        await a.connected(uid)
    async def commands() -> int:
        return sum([(await a.client(i).info("stats"))["total_commands_processed"] for i in range(len(a.urls))])

    before = await commands()
    await a.refresh()
    after = await commands()
    # Two commands (ZADD + ZRANGEBYSCORE) per shard plus whatever else this shared Redis
    # ran meanwhile; per-user refreshing would be 300+.
    assert after - before < 100


async def test_concurrent_claims_go_in_one_script_call_per_shard(nodes: Nodes) -> None:
    """The connects of one loop turn are one script call per shard, not a transaction
    each (a reconnect storm's handshakes would otherwise each wait for their own Redis
    round trip), nor two commands each for this process to pack and parse."""
    a = nodes("a")
    await a.start()

    async def transactions() -> int:
        stats = [await a.client(i).info("commandstats") for i in range(len(a.urls))]
        return sum(int(s.get(name, {}).get("calls", 0)) for s in stats
                   for name in ("cmdstat_multi", "cmdstat_evalsha", "cmdstat_eval"))

    before = await transactions()
    answers = await asyncio.gather(*(a.connected(uid) for uid in range(1000, 1300)))
    after = await transactions()
    assert answers == [True] * 300
    # One per shard, plus whatever else this shared Redis ran meanwhile; per connect: 300.
    assert after - before < 100
    assert await nodes("b").online_among(list(range(1000, 1300))) == set(range(1000, 1300))


async def test_claims_in_one_batch_keep_their_order(nodes: Nodes) -> None:
    """A connect and a disconnect queued together end as a withdrawn claim, and of two
    nodes claiming one user at once exactly one finds the user newly online."""
    a, b = nodes("a"), nodes("b")
    await a.start()
    await b.start()
    came, went = await asyncio.gather(a.connected(42), a.disconnected(42))
    assert (came, went) == (True, True)
    assert not await b.is_online(42)
    assert await a.client_for(42).smembers(f"{a.prefix}:n:{a.node_id}") == set()
    first = await asyncio.gather(a.connected(43), b.connected(43))
    assert sorted(first) == [False, True]


async def test_everyone_online_walks_every_shard(nodes: Nodes) -> None:
    a, b = nodes("a", ttl=0.6), nodes("b")
    await a.start()
    await b.start()
    for uid in range(1, 31):
        await (a if uid % 2 else b).connected(uid)
    assert await b.everyone_online() == set(range(1, 31))
    assert a._refresher is not None
    a._closing = True  # a dies: its claims stop counting after its ttl
    a._refresher.cancel()
    await asyncio.sleep(0.8)
    assert await b.everyone_online() == set(range(2, 31, 2))


async def test_a_shard_outage_touches_only_its_users(tmp_path: Path) -> None:
    """Three shards, one killed: the others answer for their users; the dead one's
    users fall back to what each process knows; restarted empty, the next refresh
    claims them again."""
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    servers = [RedisServer(tmp_path / f"redis{i}").start() for i in range(3)]
    urls = [s.url for s in servers]
    a, b = RedisPresence(urls, "a", prefix="p"), RedisPresence(urls, "b", prefix="p")
    try:
        await a.start()
        await b.start()
        users = list(range(1, 40))
        for uid in users:
            await a.connected(uid)
        on_dead = {u for u in users if a.shard_of(u) == 1}
        assert on_dead and on_dead != set(users)
        servers[1].kill()
        assert await b.online_among(users) == set(users) - on_dead  # b cannot know
        assert await a.online_among(users) == set(users)  # a holds them itself
        servers[1].start()  # back, empty
        assert await b.online_among(users) == set(users) - on_dead
        for _ in range(10):  # as the refresh loop does: pooled connections died with it
            with contextlib.suppress(RedisError, OSError):
                await a.refresh()
                break
        assert await b.online_among(users) == set(users)
    finally:
        await a.close()
        await b.close()
        for server in servers:
            server.stop()
