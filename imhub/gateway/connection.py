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
        writes = sent = 0
        while self.dirty:
            dirty, self.dirty = self.dirty, []
            for conn in dirty:
                n = conn._flush()
                if n:
                    writes += 1
                    sent += n
        # Counted once per run, not per socket (a 10k fan-out is 10k flushes).
        _HOT.writes += writes
        _HOT.sent_bytes += sent


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


# Live frames held during a catch-up, at most: past this the held ones are dropped and
# the catch-up reads the store once more (they are all stored), so memory stays bounded.
MAX_HELD_FRAMES = 5000
# A catch-up writes its next page only when the socket's buffer is below this share of
# the slow-consumer bound.
BACKLOG_DRAIN_SHARE = 4


class Connection:
    """One client socket. ``seed``: a client that declared no capabilities (the seed's
    own client, docs/protocol.md "Seed clients"): it gets chat messages only, in a form
    it can draw, and no acks or errors it did not ask for."""

    __slots__ = (
        "_flush_scheduled",
        "_flusher",
        "_held",
        "_sent_upto",
        "catching_up",
        "close_cb",
        "closed",
        "dropped_frames",
        "held_overflow",
        "id",
        "max_buffer",
        "pending",
        "seed",
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
        seed: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.user_id = user_id
        # Which login this socket belongs to, so logging out closes exactly it.
        self.token_hash = token_hash
        self.seed = seed
        self.transport = transport
        self.close_cb = close_cb
        self.max_buffer = max_buffer
        self.pending: list[bytes] = []
        self.closed = False
        # Set when frames were thrown away (slow consumer): nothing may be assumed delivered.
        self.dropped_frames = False
        # While catching up (pushing what the user missed), live message frames are
        # held back as (conv, seq, sender, frame): the backlog goes out first, then the
        # held frames it did not contain, so each message reaches the socket once.
        self.catching_up = False
        self.held_overflow = False
        self._held: list[tuple[str, int, int, bytes]] = []
        # conv -> highest seq a catch-up wrote: a live copy at or below it (committed
        # before the backlog was read, fanned out after) is not written again.
        self._sent_upto: dict[str, int] | None = None
        self._flush_scheduled = False
        self._flusher = _flusher(loop)

    def push(self, frame: bytes, conv: str = "", seq: int = 0, sender: int = 0) -> bool:
        """Queue a complete WebSocket frame; written at the end of this loop turn.
        False if it was not queued for writing: closed, held during a catch-up, or a
        message the catch-up wrote already."""
        if self.closed:
            return False
        if seq:
            if self.catching_up:
                if len(self._held) >= MAX_HELD_FRAMES:
                    self.held_overflow = True
                    self._held = []
                if not self.held_overflow:
                    self._held.append((conv, seq, sender, frame))
                return False
            sent = self._sent_upto
            if sent is not None and seq <= sent.get(conv, 0):
                return False
        self.pending.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._flusher.add(self)
        return True

    def push_reply(self, frame: bytes, answers_request: bool = False) -> None:
        """An answer to something this client sent (error, heartbeat, request reply).
        A seed client only ever gets the ones to frames that carried a ``cid``/``rid``:
        it takes any frame for a chat message."""
        if not self.seed or answers_request:
            self.push(frame)

    # The messaging service's AckSink: the outcome of a message this socket sent.
    def acked(self, message: Message, duplicate: bool) -> None:
        if not self.seed or message.cid:
            self.push(text_frame(encode_ack(message, duplicate)))

    def failed(self, error: Refused) -> None:
        self.push_reply(text_frame(encode_error(error)), bool(error.cid))

    # --- catch-up ------------------------------------------------------------------

    def write_backlog(self, frames: list[bytes], conv: str, upto: int) -> None:
        """Write a page of missed messages of ``conv`` now, ahead of the held ones."""
        if self.closed:
            return
        if self._sent_upto is None:
            self._sent_upto = {}
        if upto > self._sent_upto.get(conv, 0):
            self._sent_upto[conv] = upto
        self.pending.extend(frames)
        n = self._flush()
        if n:
            _HOT.writes += 1
            _HOT.sent_bytes += n

    def backlog_room(self) -> bool:
        """True when the socket can take the next backlog page."""
        return self.transport.get_write_buffer_size() * BACKLOG_DRAIN_SHARE <= self.max_buffer

    def restart_catch_up(self) -> None:
        """Too much arrived during the catch-up: drop what was held (it is stored) and
        read the store again."""
        self._held = []
        self.held_overflow = False

    def finish_catch_up(self) -> list[tuple[str, int, int]]:
        """End the catch-up: write the held frames the backlog did not contain, in the
        order they came. Returns their ``(conv, seq, sender)``."""
        self.catching_up = False
        held, self._held = self._held, []
        written = []
        for conv, seq, sender, frame in held:
            if self.push(frame, conv, seq):
                written.append((conv, seq, sender))
        return written

    def _flush(self) -> int:
        """Write what is pending; returns the bytes written (0: nothing). Also called
        by flush_now(); the flusher's later call then finds nothing."""
        self._flush_scheduled = False
        pending = self.pending
        if self.closed or not pending:
            return 0
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()  # the same list again: no allocation per write
        transport = self.transport
        if transport.is_closing():
            self.dropped_frames = True
            return 0
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_buffer:
            metrics.slow_consumer_closes.inc()
            self.dropped_frames = True
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect and sync")
        return len(data)

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.pending = []
            self._held = []
            self.close_cb(code, reason)
