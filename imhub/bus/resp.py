"""The bus's RESP2 reply reader: hiredis's C parser behind a small interface.

redis-py's pure-Python parser reads a reply element by element, each through a
coroutine and the stream's ``readline``/``readexactly``, and its ``read_response``
arms a timeout per reply: ~30 µs of CPU for every pub/sub message a process receives
(docs/benchmarks/perf7-cap.md). The bus's subscriber and publisher read what the
socket has in one ``read`` and take every complete reply out of it here; a reply
split across reads waits in hiredis's buffer for the rest.

Replies come out as redis-py's RESP2 parser gives them with decoding off: bulk and
simple strings as ``bytes``, integers as ``int``, null as ``None``, arrays as
``list``; an error reply as a :class:`ReplyError` value (it may belong to one command
of many: the caller decides). Bytes that are not RESP raise ValueError.
"""

from __future__ import annotations

from typing import Any

import hiredis


class ReplyError(Exception):
    """An error reply (``-ERR …``), returned as a value, not raised; ``str()`` is its text."""


class Replies:
    """Bytes in as they arrive, complete replies out, in order."""

    __slots__ = ("_reader",)

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=ValueError, replyError=ReplyError)

    def feed(self, data: bytes) -> list[Any]:
        reader = self._reader
        reader.feed(data)
        out = []
        while (reply := reader.gets()) is not False:
            out.append(reply)
        return out


__all__ = ["Replies", "ReplyError"]
