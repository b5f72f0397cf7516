"""The session sweeper (one task for every socket): a quiet client is pinged, a silent
one is closed with 4000 "idle timeout", an active one is left alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from imhub.config import Settings
from tests.integration.chatkit import connect, make_user


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", ping_interval_seconds=0.5, idle_timeout_seconds=1.5)


async def test_quiet_socket_is_pinged_then_closed_and_active_one_stays(client: TestClient) -> None:
    silent_user, active_user = await make_user(client), await make_user(client)
    active = await connect(client, active_user, autosync=0)
    # aiohttp's client answers pings itself unless told otherwise: read them raw.
    ws = await client.ws_connect(
        "/chat", params={"id": str(silent_user.id), "token": silent_user.token, "autosync": "0", "v": "2"},
        autoping=False,
    )

    async def keep_talking() -> None:
        for _ in range(12):
            await active.send(cmd=0)
            await asyncio.sleep(0.25)

    talker = asyncio.create_task(keep_talking())
    msg = await ws.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.PING
    # This client never answers: more pings, then the close.
    msg = await ws.receive(timeout=5)
    while msg.type == aiohttp.WSMsgType.PING:
        msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert msg.data == 4000 and msg.extra == "idle timeout"
    await talker
    # Still served after 3 s of heartbeats, longer than the idle timeout.
    await active.send(cmd=0)
    reply = await active.recv_until(lambda f: f.get("cmd") == 0)
    assert "ts" in reply
    await active.close()
