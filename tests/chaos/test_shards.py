"""Chaos with a sharded Redis bus: ``imhub serve --workers 2`` on three private
``redis-server`` shards (``IMHUB_REDIS_URL`` a list), under the steady chat load of
tests/chaos/chaoskit.py. One shard fails mid-run (SIGKILL then a restart, or SIGSTOP
then SIGCONT) while messages flow between the two workers:

- the users whose topics the other shards carry keep receiving live, and are never
  told to resync (cmd 37): the outage is not theirs;
- the users on the failed shard are told to resync once it is back;
- in the end no acked message is lost, none stored twice, none out of order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imhub.bus.redis import safe_url, user_channel
from imhub.bus.ring import HashRing
from tests.chaos.chaoskit import ChaosClient, ChatLoad, assert_clean, run_with_fault
from tests.chaos.test_chaos import PAIRS
from tests.ops.test_rolling_restart import wait_for_serving, wait_for_workers
from tests.redisproc import RedisServer
from tests.serverproc import ServerProcess

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server"),
]

SHARDS = 3


@dataclass
class Sharded:
    shards: list[RedisServer]
    server: ServerProcess
    prefix: str

    def shard_of(self, user_id: int) -> int:
        ring = HashRing([safe_url(s.url) for s in self.shards])
        return ring.index(user_channel(self.prefix, user_id))


@pytest.fixture
async def sharded(tmp_path: Path) -> AsyncIterator[Sharded]:
    shards = [RedisServer(tmp_path / f"redis{i}").start() for i in range(SHARDS)]
    prefix = f"t{uuid.uuid4().hex[:10]}"
    server = ServerProcess(
        tmp_path / "data", IMHUB_WORKERS="2", IMHUB_BUS="redis", IMHUB_REDIS_URL=",".join(s.url for s in shards),
        IMHUB_REDIS_PREFIX=prefix, IMHUB_DRAIN_SECONDS="2", IMHUB_LOG_FORMAT="json", IMHUB_LOG_LEVEL="info",
    )
    try:
        server.start(timeout=60)
        await wait_for_workers(server.proc.pid, without=0, timeout=60)  # type: ignore[union-attr]
        await wait_for_serving(server, 2)
        yield Sharded(shards, server, prefix)
    finally:
        server.stop()
        for s in shards:
            s.stop()


def split(c: Sharded, load: ChatLoad) -> tuple[int, list[ChaosClient], list[ChaosClient]]:
    """The shard to break (the one carrying most of the load's users), its clients, and
    the clients on the other shards."""
    counts = [0] * SHARDS
    for client in load.clients:
        counts[c.shard_of(client.user.id)] += 1
    victim = counts.index(max(counts))
    on = [x for x in load.clients if c.shard_of(x.user.id) == victim]
    return victim, on, [x for x in load.clients if x not in on]


async def resynced(clients: list[ChaosClient], before: dict[int, int], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while any(x.resync_frames <= before[x.user.id] for x in clients):
        if time.monotonic() > deadline:
            raise AssertionError("not every client of the failed shard was told to resync (cmd 37)")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["kill", "stop"])
async def test_one_shard_fails_the_others_keep_flowing_and_nothing_is_lost(sharded: Sharded, how: str) -> None:
    load = ChatLoad(sharded.server.url, pairs=PAIRS)
    await load.setup()
    victim, on, elsewhere = split(sharded, load)
    assert on
    shard = sharded.shards[victim]
    flowed: dict[int, int] = {}

    async def fault() -> None:
        resyncs = {x.user.id: x.resync_frames for x in load.clients}
        applied = {x.user.id: len(x.applied) for x in elsewhere}
        assert shard.proc is not None
        if how == "kill":
            shard.kill()
        else:
            os.kill(shard.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(4.0)  # an outage with traffic (a hang is noticed in ~3 s)
            flowed.update({x.user.id: len(x.applied) - applied[x.user.id] for x in elsewhere})
        finally:
            if how == "kill":
                shard.start()
            else:
                os.kill(shard.proc.pid, signal.SIGCONT)
        await resynced(on, resyncs)
        # The outage was not theirs: no cmd 37 (what the others got was lost on the
        # failed shard only).
        assert {x.user.id: x.resync_frames for x in elsewhere} == {x.user.id: resyncs[x.user.id] for x in elsewhere}

    result = await run_with_fault(load, fault, rounds=1, between=20)
    fault_name = "SIGKILL + restart" if how == "kill" else "SIGSTOP + SIGCONT"
    assert_clean(result, f"one of {SHARDS} Redis shards {fault_name}")
    # Live delivery went on for every user on the healthy shards during the outage.
    assert all(n > 0 for n in flowed.values()), flowed
