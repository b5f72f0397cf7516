"""The bounded pool of decode workers (imhub/media/decode_pool.py)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from imhub.errors import RateLimited
from imhub.media.decode_pool import DecodeBusy, DecodePool
from imhub.media.errors import MediaRejected


async def test_runs_in_another_process_and_refuses_beyond_the_queue() -> None:
    pool = DecodePool(workers=1, per_user=10, memory_bytes=0, queue_per_worker=1)
    try:
        assert await pool.run("u", os.getpid) != os.getpid()
        running = asyncio.create_task(pool.run("a", time.sleep, 1.0))
        queued = asyncio.create_task(pool.run("b", time.sleep, 0))
        await asyncio.sleep(0.05)
        with pytest.raises(DecodeBusy) as busy:
            await pool.run("c", time.sleep, 0)
        assert busy.value.status == 503 and busy.value.extra["retry_after"] > 0
        await asyncio.gather(running, queued)
        assert pool.in_flight("a") == pool.in_flight("b") == 0
    finally:
        pool.close()


async def test_per_user_share() -> None:
    pool = DecodePool(workers=2, per_user=1, memory_bytes=0)
    try:
        first = asyncio.create_task(pool.run("u", time.sleep, 0.5))
        await asyncio.sleep(0.05)
        with pytest.raises(RateLimited):
            await pool.run("u", time.sleep, 0)
        assert await pool.run("other", os.getpid) > 0  # another user is not held up
        await first
        assert pool.in_flight("u") == 0
    finally:
        pool.close()


async def test_a_cancelled_request_keeps_its_slot_until_the_worker_is_done() -> None:
    """The worker cannot be stopped mid-decode; freeing its slot at once would let a
    client that sends and abandons uploads run more decodes than there are slots."""
    pool = DecodePool(workers=1, per_user=10, memory_bytes=0)
    try:
        task = asyncio.create_task(pool.run("u", time.sleep, 0.8))
        await asyncio.sleep(0.2)
        task.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        assert pool._slots.locked(), "slot released while the worker still runs"
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not pool._slots.locked()
    finally:
        pool.close()


async def test_worker_memory_limit_refuses_instead_of_growing() -> None:
    pool = DecodePool(workers=1, per_user=10, memory_bytes=1024 * 1024 * 1024)
    try:
        with pytest.raises(MediaRejected) as err:
            await pool.run("u", bytearray, 2 * 1024 * 1024 * 1024)
        assert "memory" in err.value.msg
    finally:
        pool.close()
