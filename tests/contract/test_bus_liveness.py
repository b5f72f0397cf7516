"""RedisBus against a private redis-server that hangs (SIGSTOP, issue #22): the hang is
detected within seconds and handled like an outage (``on_resync`` once Redis answers
again). The buses run with the production keepalive/liveness defaults."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imhub.bus.redis import RedisBus
from tests.conftest import service_unavailable
from tests.contract.test_bus import Node, env, until
from tests.redisproc import RedisServer


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if not RedisServer.available():
        service_unavailable("redis-server", "not installed")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


async def started(server: RedisServer, prefix: str) -> Node:
    bus = RedisBus(server.url, prefix=prefix, backoff_base=0.05, backoff_cap=0.5)
    node = Node(bus)
    await bus.start(node.got.append, node.got.append, node.resynced)
    return node


async def reaches(a: Node, b: Node, user: int) -> None:
    """Publish from ``a`` until ``b`` gets it (b's subscription is live)."""
    for _ in range(200):
        before = len(b.got)
        await a.bus.publish(env((user,)))
        await asyncio.sleep(0.05)
        if len(b.got) > before:
            return
    raise AssertionError("the envelope never reached the other bus")


async def test_a_hung_redis_is_an_outage_detected_in_seconds(redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a, b = await started(redis, prefix), await started(redis, prefix)
    try:
        b.bus.watch_user(1)
        await reaches(a, b, 1)
        assert b.resyncs == 0
        redis.pause()
        try:
            # The old bus waited for 23 s of silence (2 x 10 s keepalive + 3 s); it is
            # ~3 s now. 8 s leaves room for a busy machine.
            await until(lambda: not b.bus.ready, timeout=8)
        finally:
            redis.resume()
        # Whatever was published during the hang may be lost: clients are told to sync.
        await until(lambda: b.resyncs == 1 and a.resyncs == 1, timeout=10)
        await reaches(a, b, 1)
    finally:
        await a.bus.close()
        await b.bus.close()
