"""The gateway's own WebSocket layer (imhub.web.handoff + ChatSocket): aiohttp answers
the upgrade, then the socket is read and written without it. What aiohttp did for us
must still hold: pings answered, the close handshake, fragments, UTF-8, and nothing of
the HTTP request kept alive by an idle socket."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from imhub.web.chat import SESSIONS
from imhub.web.context import SERVICES
from tests.integration.chatkit import make_user
from tests.security.test_unmasked_frames import frame, frames_until_close, open_raw

HEARTBEAT = json.dumps({"cmd": 0, "rid": "h"}).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    return b0 & 0x0F, await reader.readexactly(n)


async def sessions_closed(client: TestClient) -> None:
    """Wait (up to 2 s) until the server has dropped every chat session."""
    for _ in range(100):
        if not client.app[SESSIONS]:
            break
        await asyncio.sleep(0.02)
    assert not client.app[SESSIONS]


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
    await sessions_closed(client)


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
    await sessions_closed(client)


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


async def test_a_client_gone_during_the_token_read_is_not_connected(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In a reconnect storm clients give up on slow handshakes and retry; the server must
    not then claim presence and upgrade for the abandoned ones (the 250k run spent its
    CPU on ~16k of them, perf-big.md)."""
    svc = client.app[SERVICES]
    user = await make_user(client)
    entered, release = asyncio.Event(), asyncio.Event()
    read_token = svc.accounts.open_session

    async def slow_open_session(token: str):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        return await read_token(token)

    connected: list[object] = []
    node_connect = svc.node.connect

    async def recording_connect(conn, opening):  # type: ignore[no-untyped-def]
        connected.append(conn)
        return await node_connect(conn, opening)

    monkeypatch.setattr(svc.accounts, "open_session", slow_open_session)
    monkeypatch.setattr(svc.node, "connect", recording_connect)
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /chat?id={user.id}&token={user.token}&autosync=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await asyncio.wait_for(entered.wait(), 5)
    writer.close()  # the client gives up while its token is being read
    await writer.wait_closed()
    await asyncio.sleep(0.2)  # the server reads the FIN
    release.set()
    for _ in range(50):
        await asyncio.sleep(0.02)
    assert connected == []
    assert not client.app[SESSIONS]
