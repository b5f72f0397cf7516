"""RFC 6455 §5.1: a server MUST close the connection when a client frame is not
masked, with 1002 (protocol error). aiohttp's reader accepts unmasked frames, so the
gateway checks the mask bit of every client frame itself (issue #16 item 10)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.chatkit import make_user


def frame(payload: bytes, *, masked: bool, opcode: int = 0x1) -> bytes:
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((0x80 | opcode, bit | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def open_raw(client: TestClient, first: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    user = await make_user(client)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /chat?id={user.id}&token={user.token}&autosync=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode() + first
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def frames_until_close(reader: asyncio.StreamReader) -> tuple[list[bytes], int | None]:
    """Server frames (payloads) until its close frame; returns them and the close code."""
    got = []
    while True:
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        if b0 & 0x0F == 0x8:
            return got, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        got.append(payload)


HEARTBEAT = json.dumps({"cmd": 0, "rid": "h"}).encode()  # with rid: always answered


@pytest.mark.parametrize("with_handshake", [False, True], ids=["later", "with-the-upgrade-request"])
async def test_unmasked_frame_is_closed_with_1002(client: TestClient, with_handshake: bool) -> None:
    first = frame(HEARTBEAT, masked=False) if with_handshake else b""
    reader, writer = await open_raw(client, first)
    try:
        if not with_handshake:
            writer.write(frame(HEARTBEAT, masked=True))  # a proper frame first: answered
            _, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
            assert b"ts" in await reader.readexactly(b1 & 0x7F)
            writer.write(frame(HEARTBEAT, masked=False))
        got, code = await frames_until_close(reader)
        assert code == 1002
        assert got == []  # the unmasked heartbeat got no answer
    finally:
        writer.close()


async def test_masked_frames_of_every_length_pass(client: TestClient) -> None:
    reader, writer = await open_raw(client)
    try:
        # Bodies of 7- 16- and 64-bit lengths; 65536 bytes is IMHUB_MAX_FRAME_BYTES exactly.
        for size in (30, 125, 126, 5000, 65536):
            empty = len(json.dumps({"cmd": 0, "rid": str(size), "pad": ""}))
            body = json.dumps({"cmd": 0, "rid": str(size), "pad": "x" * max(size - empty, 0)}).encode()
            data = frame(body, masked=True)
            for i in range(0, len(data), 777):  # split across reads, headers included
                writer.write(data[i:i + 777])
                await writer.drain()
        writer.write(frame(b"", masked=True, opcode=0x9))  # a ping
        got = []
        while len(got) < 6:
            b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
            assert b0 & 0x0F != 0x8, "closed"
            got.append(await reader.readexactly(b1 & 0x7F))
    finally:
        writer.close()
