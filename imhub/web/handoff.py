"""Taking an upgraded socket away from aiohttp.

aiohttp answers the WebSocket upgrade (its checks of the request's headers, the 101
response); after that the gateway reads and writes the socket itself
(imhub.web.chat.ChatSocket on imhub.protocol.wsreader), so that an idle connection
keeps no request, response, reader, writer, queue, task or coroutine frames alive
(aiohttp's WebSocketResponse held ~14 KB per idle socket) and a heartbeat is answered
from ``data_received`` without waking a task.

It hooks aiohttp internals (pinned in pyproject.toml): the request handler's
``transport``, ``_message_tail`` (bytes that arrived after the upgrade request) and
``_manager`` (the server's table of connections, which would keep the handler alive).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_websocket import WebSocketWriter
from aiohttp.web_request import BaseRequest


class HandoffResponse(web.WebSocketResponse):
    """Answers the upgrade and nothing more: no reader, writer or heartbeat is set up,
    and finishing the response (when the handler returns) writes nothing."""

    def _post_start(self, request: BaseRequest, protocol: str | None, writer: WebSocketWriter) -> None:
        request.protocol.keep_alive(False)  # also cancels the handler's keep-alive timer

    async def write_eof(self) -> None:  # type: ignore[override]
        self._eof_sent = True


def take_transport(request: web.Request) -> tuple[asyncio.Transport, bytes] | None:
    """Detach the upgraded socket from aiohttp's request handler: returns the transport
    and the bytes that came after the upgrade request (client frames sent with it), or
    None if the client is already gone. The caller sets its own protocol on the
    transport before the event loop reads from it again."""
    handler = request.protocol
    transport = handler.transport
    if transport is None or transport.is_closing():
        return None
    tail = bytes(handler._message_tail)
    handler._message_tail = b""
    handler.transport = None  # the handler closes nothing when its task ends
    manager = handler._manager
    if manager is not None:  # the server forgets the handler once its task ends
        manager.connection_lost(handler, None)
    return transport, tail
