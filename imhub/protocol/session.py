"""The WebSocket session as a sans-I/O state machine.

A :class:`Session` never touches a socket or an event loop. The gateway feeds it what
arrived (:meth:`Session.receive`, :meth:`Session.activity`) and the clock
(:meth:`Session.tick`), and carries out the actions it returns, in order:

- :class:`Reply` — write these bytes to this connection;
- :class:`Execute` — run this validated request against the services (store, bus),
  then write whatever that produced;
- :class:`Ping` — send a WebSocket ping;
- :class:`Close` — close the connection with this code; nothing more will follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from imhub.clock import now_ms
from imhub.domain.model import Cmd
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import (
    ConversationsRequest,
    ConvSettingsRequest,
    EditRequest,
    ForwardRequest,
    Heartbeat,
    HideRequest,
    HistoryRequest,
    PinRequest,
    ReactRequest,
    ReadRequest,
    RecallRequest,
    ReceiptsRequest,
    Request,
    SearchRequest,
    SendMessage,
    SyncRequest,
    TypingRequest,
    decode,
    encode_error,
)

_HEARTBEATS = frozenset({'{"cmd":0}', b'{"cmd":0}', '{"cmd": 0}', b'{"cmd": 0}'})

CLOSE_IDLE = 4000
CLOSE_REVOKED = 4001
CLOSE_SLOW_CONSUMER = 4008
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009



_HEARTBEAT_REPLY = b'{"cmd":%d,"ts":%%d}' % int(Cmd.HEARTBEAT)  # the enum formatted once


def heartbeat_reply(rid: str | None = None) -> bytes:
    """``{"cmd":0,"ts":<epoch ms>}`` (with the request's ``rid`` if it had one), the same
    bytes orjson would produce. Not orjson on the common path: its output keeps a ~4 KB
    buffer, and the last reply stays referenced by the socket's handler until its next
    frame, which is 4 KB per idle connection."""
    if rid is not None:
        return orjson.dumps({"cmd": int(Cmd.HEARTBEAT), "ts": now_ms(), "rid": rid})
    return _HEARTBEAT_REPLY % now_ms()

@dataclass(frozen=True, slots=True)
class Reply:
    """A frame for the client. ``answers_request``: it answers a frame that carried a
    ``cid`` or ``rid`` (only those reach a seed client)."""

    data: bytes
    answers_request: bool = False


@dataclass(frozen=True, slots=True)
class Execute:
    request: Request


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Reply | Execute | Ping | Close


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 64 * 1024
    ping_interval: float = 25.0
    idle_timeout: float = 75.0
    max_page: int = 200
    media_base: str = "/mnt/"  # IMHUB_MEDIA_BASE_URL: message media must come from here
    # Messages per second a connection may send, with a burst allowance.
    send_rate: float = 20.0
    send_burst: float = 60.0
    # Request units (REQUEST_COST) per second for everything but sends, with a burst.
    request_rate: float = 20.0
    request_burst: float = 100.0
    # Abuse: this many oversize frames, or refused frames in a row, closes the socket.
    max_oversize_strikes: int = 3
    max_error_streak: int = 100
    # At most one typing event per conversation per this many seconds; extra ones are
    # dropped silently (they carry no information).
    typing_interval: float = 2.0


@dataclass
class SendBucket:
    """A token bucket of messages: ``burst`` at once, then ``rate`` per second. One per
    user (shared by the user's sessions in a process), so more tabs buy no more sends."""

    rate: float
    burst: float
    tokens: float = -1.0
    last: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.last = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


# What a request costs from the user's request allowance: reads that touch many rows
# cost more. A sync also pays per conversation it names (a 56 KB cmd 20 naming 4,400
# conversations cost ~1.5 s of CPU when requests were free).
REQUEST_COST: dict[type, float] = {
    SyncRequest: 1.0, ConversationsRequest: 2.0, HistoryRequest: 1.0, ReadRequest: 0.25, TypingRequest: 0.25,
    RecallRequest: 1.0, ReceiptsRequest: 1.0, SearchRequest: 3.0, EditRequest: 1.0,
    HideRequest: 1.0, ReactRequest: 1.0, PinRequest: 1.0, ConvSettingsRequest: 1.0,
}
SYNC_CONVERSATIONS_PER_UNIT = 50


def request_cost(request: Request) -> float:
    cost = REQUEST_COST.get(type(request), 1.0)
    if isinstance(request, SyncRequest):
        cost += len(request.after) / SYNC_CONVERSATIONS_PER_UNIT
    return cost


class Allowance:
    """One user's allowances in a process, shared by all their sessions (more tabs buy
    no more): messages sent, and request units."""

    __slots__ = ("__weakref__", "requests", "send")

    def __init__(self, limits: Limits) -> None:
        self.send = SendBucket(limits.send_rate, limits.send_burst)
        self.requests = SendBucket(limits.request_rate, limits.request_burst)


@dataclass(slots=True)
class Session:
    user_id: int
    limits: Limits
    now: float
    last_seen: float = field(init=False)
    last_ping: float = field(init=False)
    closed: bool = field(init=False, default=False)
    allowance: Allowance | None = None
    _oversize_strikes: int = field(init=False, default=0)
    _error_streak: int = field(init=False, default=0)
    _typing: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.last_seen = self.last_ping = self.now
        if self.allowance is None:
            self.allowance = Allowance(self.limits)

    # --- input ---------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> list[Action]:
        """One text/binary frame arrived. Returns the actions to carry out."""
        if self.closed:
            return []
        self.activity(now)
        if data in _HEARTBEATS:
            # The commonest frame by far (every client, every ~20 s): answered without
            # JSON decoding. Other spellings take the normal path below.
            self._error_streak = 0
            return [Reply(heartbeat_reply())]
        size = len(data)
        if isinstance(data, str) and size * 4 > self.limits.max_frame_bytes:
            size = len(data.encode())  # a character is 1-4 bytes: only count when it matters
        if size > self.limits.max_frame_bytes:
            self._oversize_strikes += 1
            if self._oversize_strikes >= self.limits.max_oversize_strikes:
                return self._close(CLOSE_TOO_BIG, "repeated oversize frames")
            return self._refuse(
                Refused(ErrorCode.FRAME_TOO_LARGE, f"frame over {self.limits.max_frame_bytes} bytes")
            )
        try:
            request = decode(data, self.user_id, max_page=self.limits.max_page, media_base=self.limits.media_base)
        except Refused as err:
            return self._refuse(err)
        if isinstance(request, Heartbeat):
            self._error_streak = 0
            return [Reply(heartbeat_reply(request.rid), request.rid is not None)]
        assert self.allowance is not None
        if isinstance(request, SendMessage):
            if not self.allowance.send.take(now):
                return self._refuse(
                    Refused(ErrorCode.RATE_LIMITED, "sending too fast, slow down", cid=request.draft.cid)
                )
        elif isinstance(request, ForwardRequest):  # makes messages: paid from the sends
            if not self.allowance.send.take(now, request.messages):
                return self._refuse(Refused(ErrorCode.RATE_LIMITED, "sending too fast, slow down", rid=request.rid))
        elif not self.allowance.requests.take(now, request_cost(request)):
            return self._refuse(
                Refused(ErrorCode.RATE_LIMITED, "too many requests, slow down", rid=getattr(request, "rid", None))
            )
        self._error_streak = 0
        if isinstance(request, TypingRequest) and not self._typing_allowed(request.conv, now):
            return []
        return [Execute(request)]

    def heartbeat(self, now: float) -> bytes | None:
        """A plain ``{"cmd":0}`` arrived (the reader recognised it): the reply, or None
        when nothing is to be sent. The same as :meth:`receive` would do, without the
        lists and actions."""
        if self.closed:
            return None
        self.last_seen = now
        self._error_streak = 0
        return heartbeat_reply()

    def activity(self, now: float) -> None:
        """Anything arrived (including a pong): the peer is alive."""
        self.last_seen = now

    # --- clock ---------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """Call periodically: pings a quiet peer, closes a silent one."""
        if self.closed:
            return []
        if now - self.last_seen >= self.limits.idle_timeout:
            return self._close(CLOSE_IDLE, "idle timeout")
        if now - self.last_seen >= self.limits.ping_interval and now - self.last_ping >= self.limits.ping_interval:
            self.last_ping = now
            return [Ping()]
        return []

    # --- internals -----------------------------------------------------------------

    def _refuse(self, err: Refused) -> list[Action]:
        self._error_streak += 1
        if self._error_streak >= self.limits.max_error_streak:
            return self._close(CLOSE_POLICY, "too many refused frames")
        return [Reply(encode_error(err), bool(err.cid or err.rid))]

    def _close(self, code: int, reason: str) -> list[Action]:
        self.closed = True
        return [Close(code, reason)]

    def _typing_allowed(self, conv: str, now: float) -> bool:
        last = self._typing.get(conv)
        if last is not None and now - last < self.limits.typing_interval:
            return False
        if len(self._typing) > 64:  # bounded: forget old conversations
            self._typing.clear()
        self._typing[conv] = now
        return True
