"""Server-to-client WebSocket frames built by hand (RFC 6455 §5.2), so a frame is
encoded once and the same bytes are written to every recipient's socket. Server
frames are never masked; permessage-deflate is off, so there is nothing per-socket."""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _FIN_TEXT, 126, n) + payload
    return struct.pack("!BBQ", _FIN_TEXT, 127, n) + payload


def payload_of(frame: bytes) -> bytes:
    """The payload of an unmasked frame built by :func:`text_frame`."""
    n = frame[1] & 0x7F
    if n < 126:
        return frame[2:]
    return frame[4:] if n == 126 else frame[10:]
