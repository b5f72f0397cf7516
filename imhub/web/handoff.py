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

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.http_websocket import WebSocketWriter
from aiohttp.web_request import BaseRequest

# The 101 as aiohttp writes it (the order of its headers kept).
_UPGRADE_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: "
)
_SERVER_TAIL = f"\r\nServer: {SERVER_SOFTWARE}\r\n\r\n".encode()


class HandoffResponse(web.WebSocketResponse):
    """Answers the upgrade and nothing more: no reader, writer or heartbeat is set up,
    and finishing the response (when the handler returns) writes nothing."""

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter:
        """The 101 written in one piece: aiohttp's own checks of the request
        (``_handshake``: the same 400s), then the bytes its header machinery produced
        (status line, Upgrade, Connection, Sec-WebSocket-Accept, Date, Server) without
        the machinery (header dict, chunking and length rules, serialiser, a
        WebSocketWriter nobody uses): ~2 % of a worker's samples per handshake. Anything
        unusual (HTTP/1.0, a sub-protocol asked for, a response-prepare signal, headers
        set on this response) takes aiohttp's path."""
        if self._payload_writer is not None:  # again, when the handler has returned
            return self._payload_writer
        if (
            request.version != HttpVersion11
            or not isinstance(request, web.Request)
            or request.app.on_response_prepare
            or self._headers
        ):
            return await super().prepare(request)
        headers, protocol, _, _ = self._handshake(request)
        if protocol is not None:
            return await super().prepare(request)
        transport = request.protocol.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        self._loop = request._loop
        self.set_status(101)
        self.headers.update(headers)
        self.force_close()
        self._req = request
        writer = self._payload_writer = request._payload_writer
        self._writer = _NO_WRITER  # "prepared"; nothing writes through it
        request.protocol.keep_alive(False)  # also cancels the handler's keep-alive timer
        transport.write(
            b"".join((
                _UPGRADE_HEAD,
                headers[hdrs.SEC_WEBSOCKET_ACCEPT].encode(),
                b"\r\nDate: ",
                rfc822_formatted_time().encode(),
                _SERVER_TAIL,
            ))
        )
        return writer

    def _post_start(self, request: BaseRequest, protocol: str | None, writer: WebSocketWriter) -> None:
        request.protocol.keep_alive(False)  # also cancels the handler's keep-alive timer

    async def write_eof(self) -> None:  # type: ignore[override]
        self._eof_sent = True


_NO_WRITER: WebSocketWriter = object()  # type: ignore[assignment]


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
