"""One client socket as seen by the hub: an outbound buffer and a flush.

Frames are appended to ``pending`` and written with one ``transport.write`` per
event-loop turn (write coalescing: a burst of group messages costs one syscall per
socket, not one per message; an ack and the 'delivered' receipt that follows it go out
together). One callback per loop turn walks the connections that have something
pending (not one callback per connection); :func:`flush_now` writes them at once.

The outbound bound is the transport's own buffer: when a reader is so slow that more
than ``max_buffer`` bytes wait in the kernel and the transport, the connection is
closed as a slow consumer (code 4008); the client reconnects and syncs, and no other
socket ever waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import Callable
from typing import Protocol

from imhub import metrics
from imhub.domain.model import Message
from imhub.errors import Refused
from imhub.protocol.frames import encode_ack, encode_error
from imhub.protocol.session import CLOSE_SLOW_CONSUMER
from imhub.protocol.wsframe import text_frame

_ids = itertools.count(1)
_HOT = metrics.HOT


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


class _Flusher:
    """The connections of one event loop with frames pending, flushed by one callback."""

    __slots__ = ("dirty", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.dirty: list[Connection] = []
        self.scheduled = False

    def add(self, conn: Connection) -> None:
        self.dirty.append(conn)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        while self.dirty:
            dirty, self.dirty = self.dirty, []
            for conn in dirty:
                conn._flush()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = weakref.WeakKeyDictionary()


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    f = _flushers.get(loop)
    if f is None:
        f = _flushers[loop] = _Flusher(loop)
    return f


def flush_now(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Write every connection's pending frames now instead of at the end of this loop
    turn (acks should not wait behind a large group fan-out in the same turn)."""
    f = _flushers.get(loop or asyncio.get_running_loop())
    if f is not None and f.dirty:
        f.run()


class Connection:
    __slots__ = (
        "_flush_scheduled",
        "_flusher",
        "_held",
        "catching_up",
        "close_cb",
        "closed",
        "dropped_frames",
        "id",
        "max_buffer",
        "pending",
        "token_hash",
        "transport",
        "user_id",
    )

    def __init__(
        self,
        user_id: int,
        transport: Transport,
        close_cb: Callable[[int, str], None],
        max_buffer: int,
        loop: asyncio.AbstractEventLoop,
        token_hash: str = "",
    ) -> None:
        self.id = next(_ids)
        self.user_id = user_id
        # Which login this socket belongs to, so logging out closes exactly it.
        self.token_hash = token_hash
        self.transport = transport
        self.close_cb = close_cb
        self.max_buffer = max_buffer
        self.pending: list[bytes] = []
        self.closed = False
        # Set when frames were thrown away (slow consumer): nothing may be assumed delivered.
        self.dropped_frames = False
        # While catching up (pushing what the user missed), live frames are held
        # back with their (conv, seq) so the backlog goes out first and nothing twice.
        self.catching_up = False
        self._held: list[tuple[str, int, bytes]] = []
        self._flush_scheduled = False
        self._flusher = _flusher(loop)

    def push(self, frame: bytes, conv: str = "", seq: int = 0) -> None:
        """Queue a complete WebSocket frame; written at the end of this loop turn."""
        if self.closed:
            return
        if self.catching_up:
            self._held.append((conv, seq, frame))
            return
        self.pending.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)

    def finish_catch_up(self, backlog: list[bytes], seen: dict[str, int]) -> None:
        """Write the backlog, then the held live frames not already in it."""
        self.catching_up = False
        for frame in backlog:
            self.push(frame)
        for conv, seq, frame in self._held:
            if not (seq and seq <= seen.get(conv, 0)):
                self.push(frame)
        self._held = []

    # The messaging service's AckSink: the outcome of a message this socket sent.
    def acked(self, message: Message, duplicate: bool) -> None:
        self.push(text_frame(encode_ack(message, duplicate)))

    def failed(self, error: Refused) -> None:
        self.push(text_frame(encode_error(error)))

    def _flush(self) -> None:
        # Also called by flush_now(); the flusher's later call then finds nothing.
        self._flush_scheduled = False
        if self.closed or not self.pending:
            return
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending = []
        if self.transport.is_closing():
            self.dropped_frames = True
            return
        self.transport.write(data)
        _HOT.writes += 1
        _HOT.sent_bytes += len(data)
        if self.transport.get_write_buffer_size() > self.max_buffer:
            metrics.slow_consumer_closes.inc()
            self.dropped_frames = True
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect and sync")

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.pending = []
            self._held = []
            self.close_cb(code, reason)
