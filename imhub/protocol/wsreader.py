"""Client-to-server WebSocket frames, read without I/O (RFC 6455 §5).

:class:`FrameReader` takes the bytes of a socket as they come and returns whole
messages: ``(opcode, payload)`` with fragments joined, payloads unmasked, text checked
to be UTF-8 (and given as ``str``; :data:`HEARTBEAT` frames as ``bytes``, unchecked:
they are ASCII). A violation stops the reading: the messages before it are returned and
:attr:`FrameReader.error` says what to close with (a :class:`WsError`):

- 1002: an unmasked frame (a server MUST close on one, §5.1), reserved bits (no
  extension is negotiated), an unknown opcode, a fragmented or oversize control frame,
  a continuation with nothing to continue or a new message inside a fragmented one, a
  close payload of one byte or with an invalid code;
- 1007: text (or a close reason) that is not UTF-8;
- 1009: a message over ``max_size`` bytes, refused from its header, before its payload
  is buffered.
"""

from __future__ import annotations

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_TEXT = 1007
CLOSE_TOO_BIG = 1009

# Close codes a peer may send (below 3000 only the registered ones), as aiohttp accepts.
_REGISTERED_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

# The commonest frame by far: a heartbeat, passed on as bytes without decoding.
HEARTBEAT = b'{"cmd":0}'
_HEARTBEAT_B1 = 0x80 | len(HEARTBEAT)  # masked, its length
_HEARTBEAT_FRAME_SIZE = 2 + 4 + len(HEARTBEAT)


class WsError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (one big-int XOR: no per-byte loop)."""
    n = len(data)
    if not n:
        return b""
    mask = (key * ((n + 3) >> 2))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(mask, "little")).to_bytes(n, "little")


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame (code, then the UTF-8 reason, at most 123 bytes)."""
    return code.to_bytes(2, "big") + reason.encode()[:123].decode(errors="ignore").encode()


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """The code and reason of a client's close frame (no code: ``None``)."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise WsError(CLOSE_PROTOCOL_ERROR, "close frame payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code < 3000 and code not in _REGISTERED_CLOSE_CODES:
        raise WsError(CLOSE_PROTOCOL_ERROR, f"invalid close code: {code}")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise WsError(CLOSE_INVALID_TEXT, "close reason is not UTF-8") from None


class FrameReader:
    """The frames of one client connection. ``max_size``: the largest message accepted."""

    __slots__ = ("_buf", "_frag_op", "_frag_size", "_frags", "error", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = b""  # an incomplete frame
        self._frag_op = 0  # opcode of the fragmented message being read (0: none)
        self._frags: list[bytes] = []
        self._frag_size = 0
        self.error: WsError | None = None

    def is_heartbeat(self, data: bytes) -> bool:
        """True if ``data`` is exactly one masked, whole ``{"cmd":0}`` text frame read
        between messages (what nearly every read of an idle client is): then it needs
        no :meth:`feed` (which would return just that)."""
        return (
            len(data) == _HEARTBEAT_FRAME_SIZE
            and data[0] == 0x81
            and data[1] == _HEARTBEAT_B1
            and not self._buf
            and not self._frag_op
            and self.error is None
            and unmask(data[2:6], data[6:]) == HEARTBEAT
        )

    def feed(self, data: bytes) -> list[tuple[int, str | bytes]]:
        """The messages completed by ``data``, in order. After a violation (``error``
        set) the rest of the stream is ignored."""
        if self.error is not None:
            return []
        out: list[tuple[int, str | bytes]] = []
        try:
            self._read(self._buf + data if self._buf else data, out)
        except WsError as err:
            self.error = err
            self._buf = b""
        return out

    def _read(self, buf: bytes, out: list[tuple[int, str | bytes]]) -> None:
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if not b1 & 0x80:
                raise WsError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
            if b0 & 0x70:
                raise WsError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
            op = b0 & 0x0F
            fin = b0 & 0x80
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if end - head < 2:
                    break
                n = int.from_bytes(buf[head : head + 2], "big")
                head += 2
            elif n == 127:
                if end - head < 8:
                    break
                n = int.from_bytes(buf[head : head + 8], "big")
                head += 8
            if op >= OP_CLOSE:
                if op > OP_PONG:
                    raise WsError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {op}")
                if not fin or n > 125:
                    raise WsError(CLOSE_PROTOCOL_ERROR, "control frames must be whole and short")
            elif op > OP_BINARY:
                raise WsError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {op}")
            elif (self._frag_size if op == OP_CONTINUATION else 0) + n > self.max_size:
                raise WsError(CLOSE_TOO_BIG, f"message over {self.max_size} bytes")
            if end - head < 4 + n:
                break
            payload = unmask(buf[head : head + 4], buf[head + 4 : head + 4 + n])
            pos = head + 4 + n
            if op >= OP_CLOSE:
                out.append((op, payload))
                continue
            if op == OP_CONTINUATION:
                if not self._frag_op:
                    raise WsError(CLOSE_PROTOCOL_ERROR, "continuation frame with nothing to continue")
                self._frags.append(payload)
                self._frag_size += n
                if not fin:
                    continue
                op, payload = self._frag_op, b"".join(self._frags)
                self._frag_op, self._frag_size = 0, 0
                self._frags = []
            elif self._frag_op:
                raise WsError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
            elif not fin:
                self._frag_op, self._frags, self._frag_size = op, [payload], n
                continue
            if op == OP_TEXT and payload != HEARTBEAT:
                try:
                    out.append((op, payload.decode()))
                except UnicodeDecodeError:
                    raise WsError(CLOSE_INVALID_TEXT, "text frame is not UTF-8") from None
            else:
                out.append((op, payload))
        self._buf = buf[pos:] if pos < end else b""
