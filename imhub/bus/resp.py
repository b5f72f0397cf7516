"""A small RESP2 reply reader for the bus's own connections.

redis-py's pure-Python parser reads a reply element by element, each through a
coroutine and the stream's ``readline``/``readexactly``, and its ``read_response``
arms a timeout per reply: ~30 µs of CPU for every pub/sub message a process receives
(docs/benchmarks/perf7-cap.md). The bus's subscriber reads what the socket has in
one ``read`` and cuts every complete reply out of it here, in one pass of
``bytes.find``; a reply split across reads waits in the buffer for the rest.

Replies come out as redis-py's RESP2 parser gives them with decoding off: bulk and
simple strings as ``bytes``, integers as ``int``, null as ``None``, arrays as
``list``; an error reply as a :class:`ReplyError` value (it may belong to one command
of many: the caller decides).
"""

from __future__ import annotations

from typing import Any

_CRLF = b"\r\n"
_BULK, _ARRAY, _INT, _SIMPLE, _ERROR = 36, 42, 58, 43, 45  # $ * : + -
# A pub/sub message, the one reply the subscriber gets thousands of a second.
_MESSAGE = b"*3\r\n$7\r\nmessage\r\n"


class ReplyError(str):
    """An error reply (``-ERR …``), as a value."""


class _Incomplete(Exception):
    """The buffer ends inside this reply."""


def parse(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """The reply starting at ``buf[pos]`` and the position after it. Raises
    :class:`_Incomplete` if ``buf`` ends inside it, ValueError if it is not RESP2."""
    if buf.startswith(_MESSAGE, pos):
        channel, pos = _bulk(buf, pos + len(_MESSAGE))
        payload, pos = _bulk(buf, pos)
        return [b"message", channel, payload], pos
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == _BULK:
        return _bulk(buf, pos)
    if kind == _ARRAY:
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        pos = end + 2
        items = []
        for _ in range(n):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == _INT:
        return int(buf[pos + 1 : end]), end + 2
    if kind == _SIMPLE:
        return buf[pos + 1 : end], end + 2
    if kind == _ERROR:
        return ReplyError(buf[pos + 1 : end].decode(errors="replace")), end + 2
    raise ValueError(f"not a RESP2 reply: {bytes(buf[pos : pos + 16])!r}")


def _bulk(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    if buf[pos] != _BULK:
        raise ValueError(f"not a RESP2 bulk string: {bytes(buf[pos : pos + 16])!r}")
    n = int(buf[pos + 1 : end])
    if n < 0:
        return None, end + 2
    start = end + 2
    stop = start + n
    if len(buf) < stop + 2:
        raise _Incomplete
    if buf[stop : stop + 2] != _CRLF:
        raise ValueError("RESP2 bulk string without its CRLF")
    return buf[start:stop], stop + 2


class Replies:
    """Bytes in as they arrive, complete replies out, in order."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf + data if self._buf else data
        out = []
        pos = 0
        n = len(buf)
        while pos < n:
            try:
                reply, pos = parse(buf, pos)
            except _Incomplete:
                break
            out.append(reply)
        self._buf = buf[pos:] if pos < n else b""
        return out

    @property
    def pending(self) -> int:
        """Bytes of a reply not complete yet."""
        return len(self._buf)


__all__ = ["Replies", "ReplyError", "parse"]
