"""A lean WebSocket client on a raw asyncio Protocol (uvloop), for load generation.

Only what a benchmark needs, as cheaply as possible per connection (a few hundred
bytes of Python state plus the transport): an HTTP/1.1 upgrade handshake, a minimal
frame parser (server frames are unmasked; text, ping -> pong, close; continuation
frames are assembled), masked client frames (RFC 6455 §5.3). No compression, no
extensions, no TLS.

The owner gets callbacks through one shared :class:`Handler` object (no per-connection
closures): ``on_text(client, payload)`` for each complete text/binary message and
``on_closed(client, reason)`` once when the connection ends after having opened.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
from typing import Protocol, cast

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
MAX_HANDSHAKE_BYTES = 16 * 1024


class Handler(Protocol):
    def on_text(self, client: WSClient, payload: bytes) -> None: ...

    def on_closed(self, client: WSClient, reason: str) -> None: ...


class HandshakeError(Exception):
    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    keys = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A complete, masked client frame (FIN set)."""
    key = random.getrandbits(32).to_bytes(4, "little")
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


class Handshake:
    """One per process: a fixed Sec-WebSocket-Key and its expected accept value."""

    def __init__(self) -> None:
        self.key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())  # noqa: S324 - RFC 6455

    def request(self, host: str, target: str) -> bytes:
        return (
            b"GET " + target.encode() + b" HTTP/1.1\r\nHost: " + host.encode()
            + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + self.key
            + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )


class WSClient(asyncio.Protocol):
    __slots__ = (
        "_buf", "_frag", "_opened", "_request", "_why", "handler", "hs", "next_hb", "state", "transport", "uid",
    )

    def __init__(self, uid: int, handler: Handler, hs: Handshake, request: bytes) -> None:
        self.uid = uid
        self.handler = handler
        self.hs = hs
        self.state = CONNECTING
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._frag: bytes | None = None
        self._why = ""
        self._request: bytes | None = request
        self._opened: asyncio.Future[None] | None = asyncio.get_running_loop().create_future()
        self.next_hb = 0.0

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        assert self._request is not None
        self.transport.write(self._request)
        self._request = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if self.state == CONNECTING:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HANDSHAKE_BYTES:
                    self._fail(HandshakeError("handshake response too large"))
                else:
                    self._buf = buf
                return
            head = buf[:end]
            buf = buf[end + 4 :]
            status_line = head.split(b"\r\n", 1)[0]
            parts = status_line.split(b" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            if status != 101:
                self._fail(HandshakeError(f"HTTP {status}", status))
                return
            if self.hs.accept not in head:
                self._fail(HandshakeError("bad Sec-WebSocket-Accept", status))
                return
            self.state = OPEN
            fut, self._opened = self._opened, None
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._buf = self._parse(buf)

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.state
        self.state = CLOSED
        self._buf = b""
        if was == CONNECTING:
            why = f"connection lost during handshake: {exc!r}" if exc else "closed during handshake"
            self._fail(HandshakeError(why))
        else:
            why = self._why or ("closed by client" if was == CLOSING else f"dropped: {exc!r}")
            self.handler.on_closed(self, why)

    # --- frames --------------------------------------------------------------------

    def _parse(self, buf: bytes) -> bytes:
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            hdr = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                hdr = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hdr = 10
            masked = b1 & 0x80
            if masked:
                hdr += 4
            end = pos + hdr + length
            if end > n:
                break
            payload = buf[pos + hdr : end]
            if masked:
                payload = _mask(payload, buf[pos + hdr - 4 : pos + hdr])
            pos = end
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
            if self.state == CLOSED:
                return b""
        return buf[pos:] if pos else buf

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == OP_TEXT or opcode == OP_BINARY:
            if fin:
                self.handler.on_text(self, payload)
            else:
                self._frag = payload
        elif opcode == OP_CONT:
            self._frag = (self._frag or b"") + payload
            if fin:
                data, self._frag = self._frag, None
                self.handler.on_text(self, data)
        elif opcode == OP_PING:
            self._write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            if self.state == OPEN:
                self._why = f"server closed: {int.from_bytes(payload[:2], 'big') if payload else 0}"
                self._write(client_frame(OP_CLOSE, payload[:2]))
            self.state = CLOSING
            if self.transport is not None:
                self.transport.close()

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def _fail(self, exc: HandshakeError) -> None:
        fut, self._opened = self._opened, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    # --- API -----------------------------------------------------------------------

    async def wait_open(self) -> None:
        if self._opened is not None:
            await self._opened

    def send_text(self, payload: bytes) -> bool:
        if self.state != OPEN:
            return False
        self._write(client_frame(OP_TEXT, payload))
        return True

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def close(self, code: int = 1000) -> None:
        """Send a close frame; the server's reply (or :meth:`abort`) ends the socket."""
        if self.state == OPEN:
            self.state = CLOSING
            self._write(client_frame(OP_CLOSE, code.to_bytes(2, "big")))
        elif self.state == CONNECTING:
            self.abort()

    def abort(self) -> None:
        if self.state != CLOSED and self.state != CLOSING:
            self.state = CLOSING
        if self.transport is not None:
            self.transport.abort()


async def open_ws(
    uid: int,
    handler: Handler,
    hs: Handshake,
    host: str,
    port: int,
    target: str,
    *,
    local_ip: str | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - one bound for connect + upgrade
) -> WSClient:
    """Connect (optionally from ``local_ip``), upgrade, return the open client.
    Raises :class:`HandshakeError` or ``OSError``/``TimeoutError``."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    owned = False  # once the transport has the socket, it closes it
    try:
        sock.setblocking(False)
        if local_ip:
            # Pick the port at connect() time, so ports are unique per 4-tuple only.
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((local_ip, 0))
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = hs.request(f"{host}:{port}", target)
            owned = True
            _, client = await loop.create_connection(lambda: WSClient(uid, handler, hs, request), sock=sock)
            try:
                await client.wait_open()
            except BaseException:
                client.abort()
                raise
    except BaseException:
        if not owned:
            sock.close()
        raise
    return client
