"""imhub.web.handoff.HandoffResponse writes the 101 itself: byte for byte what aiohttp's
WebSocketResponse writes for the same request (Date aside), and aiohttp's own refusal
for a bad upgrade."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from aiohttp.test_utils import TestServer

from imhub.web.handoff import HandoffResponse

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


async def _plain(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    await ws.close()
    return ws


async def _handoff(request: web.Request) -> web.StreamResponse:
    ws = HandoffResponse(compress=False)
    await ws.prepare(request)
    return ws


async def _head(server: TestServer, path: str, extra: str = "", key: str = KEY) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return re.sub(rb"Date: [^\r]*", b"Date: D", head)
    finally:
        writer.close()


async def test_the_101_is_aiohttps_byte_for_byte() -> None:
    app = web.Application()
    app.router.add_get("/plain", _plain)
    app.router.add_get("/handoff", _handoff)
    async with TestServer(app) as server:
        plain = await _head(server, "/plain")
        assert plain.startswith(b"HTTP/1.1 101 ")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in plain  # RFC 6455's example
        assert await _head(server, "/handoff") == plain
        # a sub-protocol asked for (none spoken): aiohttp's path, the same answer
        asked = await _head(server, "/plain", "Sec-WebSocket-Protocol: chat\r\n")
        assert await _head(server, "/handoff", "Sec-WebSocket-Protocol: chat\r\n") == asked


async def test_a_bad_key_gets_aiohttps_400() -> None:
    app = web.Application()
    app.router.add_get("/plain", _plain)
    app.router.add_get("/handoff", _handoff)
    async with TestServer(app) as server:
        plain = await _head(server, "/plain", key="short")
        assert plain.startswith(b"HTTP/1.1 400 ")
        assert await _head(server, "/handoff", key="short") == plain
