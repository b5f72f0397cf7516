"""``imhub serve --workers 2``: a supervisor and two SO_REUSEPORT workers on one port,
sharing SQLite and a Redis bus. Which worker holds a socket is read from /proc."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import redis_or_skip
from tests.integration.chatkit import befriend, connect, is_msg, make_user
from tests.procfs import children, owner_of
from tests.serverproc import ServerProcess, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def two_workers(supervisor: int, without: int = 0) -> set[int] | None:
    c = children(supervisor)
    return c if len(c) == 2 and without not in c else None


def wait_for(cond, timeout: float = 15.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_workers_need_a_shared_bus(tmp_path: Path) -> None:
    env = {**os.environ, "IMHUB_DATA_DIR": str(tmp_path), "IMHUB_BUS": "local", "IMHUB_PORT": str(free_port())}
    r = subprocess.run([sys.executable, "-m", "imhub", "serve", "--workers", "2"], env=env, capture_output=True,
                       timeout=60, check=False)
    assert r.returncode == 2
    assert b"IMHUB_BUS=redis" in r.stderr


async def test_two_workers_serve_restart_and_stop(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", IMHUB_WORKERS="2", IMHUB_BUS="redis", IMHUB_REDIS_URL=redis_or_skip(),
        IMHUB_REDIS_PREFIX=f"t{uuid.uuid4().hex[:10]}",  # the shared Redis: keep to ourselves
    ).start()
    try:
        assert server.proc is not None
        sup = server.proc.pid
        workers = wait_for(lambda: two_workers(sup), what="two workers")
        # Both workers accept: spread over enough connections, the kernel's hash hits both.
        async with aiohttp.ClientSession(base_url=server.url) as http:
            a, b = await make_user(http), await make_user(http)  # type: ignore[arg-type]
            await befriend(http, a, b)  # type: ignore[arg-type]
            owners: dict[int, list[aiohttp.ClientWebSocketResponse]] = {}
            socks = []
            for _ in range(24):
                params = {"id": str(a.id), "token": a.token, "autosync": "0", "v": "2"}
                ws = await http.ws_connect("/chat", params=params)
                port = ws.get_extra_info("sockname")[1]
                pid = await asyncio.to_thread(wait_for, lambda p=port: owner_of(p, server.port, workers), 5, "owner")
                owners.setdefault(pid, []).append(ws)
                socks.append(ws)
            assert set(owners) == workers, f"connections went to {set(owners)}, workers are {workers}"
            for ws in socks:
                await ws.close()

            # Users on different workers talk through the bus.
            sa = await connect(http, a, autosync=0)  # type: ignore[arg-type]
            sb = await connect(http, b, autosync=0)  # type: ignore[arg-type]
            await sa.send(cmd=10, dstid=b.id, media=1, content="across workers", cid="w1")
            ack = await sa.reply()
            assert ack["cmd"] == 1
            got = await sb.recv_until(is_msg)
            assert got["content"] == "across workers"
            await sa.close()
            await sb.close()

        # A worker that dies is replaced; the port keeps serving meanwhile.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: two_workers(sup, without=victim), what="a replacement worker")
        assert replaced - workers and victim not in replaced
        new = next(iter(replaced - workers))

        async with aiohttp.ClientSession() as http:
            for _ in range(20):
                async with http.get(server.url + "/openapi.json") as r:
                    assert r.status == 200
        # The replacement serves too.
        deadline = time.monotonic() + 15
        served = False
        async with aiohttp.ClientSession(base_url=server.url) as http:
            while time.monotonic() < deadline and not served:
                params = {"id": str(a.id), "token": a.token, "autosync": "0", "v": "2"}
                ws = await http.ws_connect("/chat", params=params)
                port = ws.get_extra_info("sockname")[1]
                pid = await asyncio.to_thread(wait_for, lambda p=port: owner_of(p, server.port, replaced), 5, "owner")
                served = pid == new
                await ws.close()
        assert served, "the restarted worker never accepted a connection"

        # SIGTERM stops everything, cleanly.
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        for p in replaced:
            wait_for(lambda p=p: not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text(),
                     what=f"worker {p} to exit")
    finally:
        server.stop()
