"""Graceful drain: SIGTERM closes every socket with 1012 after in-flight work, the
process exits 0, and no acked message is lost; a second SIGTERM is harmless."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp

from tests.integration.chatkit import befriend, make_user
from tests.ops.conftest import ADMIN_TOKEN
from tests.ops.loadkit import Sender, stored_cids
from tests.serverproc import ServerProcess


def conv_of(a: int, b: int) -> str:
    return f"p{min(a, b)}_{max(a, b)}"


async def test_sigterm_drains_and_loses_no_acked_message(tmp_path: Path) -> None:
    # debug: the per-socket "connection closed" lines (with their code) are debug lines.
    server = ServerProcess(
        tmp_path / "data", IMHUB_DRAIN_SECONDS="5", IMHUB_ADMIN_TOKEN=ADMIN_TOKEN, IMHUB_LOG_LEVEL="debug"
    ).start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            pairs = []
            for _ in range(3):
                a, b = await make_user(http), await make_user(http)  # type: ignore[arg-type]
                await befriend(http, a, b)  # type: ignore[arg-type]
                pairs.append((a, b))
        senders = [Sender(a, b.id) for a, b in pairs]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(s.run(server.url, stop)) for s in senders]
        await asyncio.sleep(1.5)
        assert all(s.acked for s in senders)

        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.proc.wait, 20)
        assert code == 0
        assert time.monotonic() - started < 8
        # Every socket was closed with "service restart" before the process went away.
        # (A client caught mid-send may see 1006: aiohttp drops the transport right
        # after a server-side close frame.)
        await asyncio.sleep(0.5)
        assert all(s.close_codes for s in senders), [s.close_codes for s in senders]
        log = server.log_path.read_text()
        assert log.count("code=1012") >= len(senders), log[-2000:]

        server.start()  # same database: the clients come back and finish
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)

        async with aiohttp.ClientSession(base_url=server.url) as http:
            for s, (a, b) in zip(senders, pairs, strict=True):
                stored = await stored_cids(http, a, conv_of(a.id, b.id))
                assert len(stored) == len(set(stored)), "a message was stored twice"
                assert set(s.acked) <= set(stored), f"acked but lost: {set(s.acked) - set(stored)}"
                seqs = sorted(r["seq"] for r in s.acked.values())
                assert seqs == list(range(1, len(seqs) + 1)) or set(seqs) <= set(range(1, len(stored) + 1))
        log = server.log_path.read_text()
        assert "draining" in log and "Traceback" not in log
    finally:
        server.stop()


async def test_second_sigterm_during_drain_is_harmless(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", IMHUB_DRAIN_SECONDS="5").start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            a, b = await make_user(http), await make_user(http)  # type: ignore[arg-type]
            await befriend(http, a, b)  # type: ignore[arg-type]
        sender = Sender(a, b.id)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(server.url, stop))
        await asyncio.sleep(1.0)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.proc.wait, 20) == 0
        log = server.log_path.read_text()
        assert "Traceback" not in log and "stopped" in log
        server.start()
        stop.set()
        await asyncio.wait_for(task, 30)
        async with aiohttp.ClientSession(base_url=server.url) as http:
            stored = await stored_cids(http, a, conv_of(a.id, b.id))
        assert set(sender.acked) <= set(stored)
    finally:
        server.stop()


async def test_readyz_is_503_while_draining(client) -> None:
    from imhub.web.ops import DRAIN

    client.server.app[DRAIN].draining = True
    r = await client.get("/readyz")
    assert r.status == 503 and (await r.json())["draining"] is True
    r = await client.get("/chat")
    assert r.status == 503
    client.server.app[DRAIN].draining = False
