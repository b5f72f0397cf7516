"""RedisBus against a private redis-server that hangs (SIGSTOP, issue #22): the hang is
detected within seconds and handled like an outage (``on_resync`` once Redis answers
again). The buses run with the production keepalive/liveness defaults. With three
shards, only the hung one's topics stop: the others flow throughout, and the resync
names only what the hung shard carried."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from imhub.bus.base import Missed
from imhub.bus.redis import RedisBus, safe_url
from tests.conftest import service_unavailable
from tests.contract.test_bus import Fabric, Node, env, until
from tests.redisproc import RedisServer


@pytest.fixture(params=[1, 3], ids=["1shard", "3shards"])
async def shards(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[RedisServer]]:
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    servers = [RedisServer(tmp_path / f"redis{i}").start() for i in range(request.param)]
    yield servers
    for server in servers:
        server.stop()


def shard_up(server: RedisServer) -> float | None:
    return REGISTRY.get_sample_value("imhub_bus_shard_up", {"shard": safe_url(server.url)})


async def started(urls: list[str], prefix: str) -> Node:
    bus = RedisBus(urls, prefix=prefix, backoff_base=0.05, backoff_cap=0.5)
    node = Node(bus)
    await bus.start(node.got.append, node.got.append, node.resynced)
    return node


async def reaches(a: Node, b: Node, user: int) -> None:
    """Publish from ``a`` until ``b`` gets it (b's subscription is live)."""
    for _ in range(200):
        before = b.targets()[user]
        await a.bus.publish(env((user,)))
        await asyncio.sleep(0.05)
        if b.targets()[user] > before:
            return
    raise AssertionError("the envelope never reached the other bus")


async def test_a_hung_redis_is_an_outage_detected_in_seconds(shards: list[RedisServer]) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    urls = [s.url for s in shards]
    layout = Fabric("redis", urls)
    layout.prefix = prefix
    hung = len(shards) // 2
    user = layout.users_on(hung, 1)[0]
    others = [u for u in range(1, 1000) if layout.shard_of_user(u) != hung][:2] if len(shards) > 1 else []
    a, b = await started(urls, prefix), await started(urls, prefix)
    try:
        b.bus.watch_user(user)
        for w in others:
            b.bus.watch_user(w)
        await reaches(a, b, user)
        for w in others:
            await reaches(a, b, w)
        assert b.resyncs == 0
        shards[hung].pause()
        try:
            # The old bus waited for 23 s of silence (2 x 10 s keepalive + 3 s); it is
            # ~3 s now. 8 s leaves room for a busy machine.
            assert isinstance(b.bus, RedisBus)
            await until(lambda: not b.bus.shards[hung].ready, timeout=8)  # type: ignore[attr-defined]
            for w in others:  # the healthy shards carry on through the hang
                await reaches(a, b, w)
            assert all(s.ready for i, s in enumerate(b.bus.shards) if i != hung)
            assert shard_up(shards[hung]) == 0  # the metric names the hung shard
        finally:
            shards[hung].resume()
        # Whatever was published during the hang may be lost: clients are told to sync.
        await until(lambda: b.resyncs == 1 and a.resyncs == 1, timeout=10)
        assert b.missed == ([Missed(frozenset({user}), frozenset())] if others else [None])
        await reaches(a, b, user)
        await until(lambda: a.bus.ready and b.bus.ready)
        assert [shard_up(s) for s in shards] == [1] * len(shards)
    finally:
        await a.bus.close()
        await b.bus.close()
