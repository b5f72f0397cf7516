"""The gateway's own WebSocket layer (imhub.web.handoff + ChatSocket): aiohttp answers
the upgrade, then the socket is read and written without it. What aiohttp did for us
must still hold: pings answered, the close handshake, fragments, UTF-8, and nothing of
the HTTP request kept alive by an idle socket."""

from __future__ import annotations

import asyncio
import gc
import json

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from imhub.web.chat import SESSIONS
from tests.integration.chatkit import make_user
from tests.security.test_unmasked_frames import frame, frames_until_close, open_raw

HEARTBEAT = json.dumps({"cmd": 0, "rid": "h"}).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    return b0 & 0x0F, await reader.readexactly(n)


async def test_idle_socket_keeps_no_request_or_response_alive(client: TestClient) -> None:
    user = await make_user(client)
    ws = await client.ws_connect("/chat", params={"id": str(user.id), "token": user.token, "autosync": "0", "v": "2"})
    await ws.send_str('{"cmd":0,"rid":"a"}')
    reply = await ws.receive_json(timeout=5)
    assert reply["rid"] == "a"
    gc.collect()
    kept = (web.BaseRequest, web.WebSocketResponse, web.RequestHandler)
    alive = [o for o in gc.get_objects() if isinstance(o, kept)]
    assert alive == []
    assert len(client.app[SESSIONS]) == 1
    await ws.close()
    for _ in range(100):
        if not client.app[SESSIONS]:
            break
        await asyncio.sleep(0.02)
    assert not client.app[SESSIONS]


async def test_ping_is_answered_with_its_payload_and_close_is_answered(client: TestClient) -> None:
    reader, writer = await open_raw(client)
    try:
        writer.write(frame(b"are you there", masked=True, opcode=0x9))
        assert await read_frame(reader) == (0xA, b"are you there")
        writer.write(frame((1001).to_bytes(2, "big") + b"bye", masked=True, opcode=0x8))
        got, code = await frames_until_close(reader)
        assert got == [] and code == 1000
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and the server hangs up
    finally:
        writer.close()


async def test_fragmented_message_is_answered(client: TestClient) -> None:
    reader, writer = await open_raw(client)
    try:
        half = len(HEARTBEAT) // 2
        first = bytearray(frame(HEARTBEAT[:half], masked=True))
        first[0] &= 0x7F  # not the last fragment
        writer.write(bytes(first) + frame(b"x", masked=True, opcode=0x9))
        writer.write(frame(HEARTBEAT[half:], masked=True, opcode=0x0))
        assert await read_frame(reader) == (0xA, b"x")  # the ping between fragments first
        op, payload = await read_frame(reader)
        assert op == 0x1 and json.loads(payload)["rid"] == "h"
    finally:
        writer.close()


async def test_text_that_is_not_utf8_is_closed_with_1007(client: TestClient) -> None:
    reader, writer = await open_raw(client)
    try:
        writer.write(frame(b'{"cmd":0,"rid":"\xff"}', masked=True))
        got, code = await frames_until_close(reader)
        assert got == [] and code == 1007
    finally:
        writer.close()


async def test_server_close_waits_for_the_reply(client: TestClient) -> None:
    user = await make_user(client)
    ws = await client.ws_connect(
        "/chat", params={"id": str(user.id), "token": user.token, "autosync": "0", "v": "2"}, autoclose=False
    )
    for conn in list(client.app[SESSIONS]):
        conn.close(4001, "token revoked")
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and msg.extra == "token revoked"
    assert client.app[SESSIONS]  # the server waits for our answer
    await ws.close()
    for _ in range(100):
        if not client.app[SESSIONS]:
            break
        await asyncio.sleep(0.02)
    assert not client.app[SESSIONS]


async def test_frames_read_while_a_request_runs_are_answered_in_order(client: TestClient) -> None:
    """A request runs in the socket's task; the frames behind it wait in its queue
    (reading pauses past 64 of them) and are answered in the order they came."""
    reader, writer = await open_raw(client)
    try:
        burst = [frame(json.dumps({"cmd": 21, "rid": "convs"}).encode(), masked=True)]
        burst += [frame(json.dumps({"cmd": 0, "rid": str(i)}).encode(), masked=True) for i in range(200)]
        writer.write(b"".join(burst))
        rids = []
        while len(rids) < 201:
            op, payload = await read_frame(reader)
            assert op == 0x1
            rids.append(json.loads(payload)["rid"])
        assert rids == ["convs"] + [str(i) for i in range(200)]
    finally:
        writer.close()
