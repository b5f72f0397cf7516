"""The bus between server processes: a best-effort doorbell, never the truth.

Every message is stored before it is published, so a lost publish only delays a
client until it syncs. Backends (``local``, ``redis``) move two kinds of bus messages
and hand each to its own handler (as centrifuge's broker handlers and control channel):

- :class:`Delivery`: a frame for sockets (a chat message, or an event such as a
  receipt, typing, presence or a recall). The gateway node fans it out.
- :data:`Control`: an instruction to the processes holding some users' sockets
  (:class:`Revoke`, :class:`Membership`, :class:`Unfriended`). Never written to a socket
  as such. A leave and an unfriending reach every process, not only those: any
  process may have cached the membership or friendship they end (imhub.services.authz).

All routing to sockets happens in :mod:`imhub.gateway`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    """A frame for sockets.

    ``users``: every connection of these users; ``group``: every local connection of the
    group's members. ``frame`` is a complete WebSocket frame (header + JSON), encoded
    once by the publisher and written as-is to every socket. ``conv``/``seq`` identify a
    message (empty/0 for events); ``origin`` is the publishing connection's id on node
    ``node``, which gets an ack instead of a copy. ``sender`` is set on 1:1 messages:
    reaching the recipient sends a 'delivered' receipt back to the sender. ``ts`` is the
    message's server time in ms (0 for events), for the bus lag metric.
    """

    frame: bytes
    users: tuple[int, ...] = ()
    group: int = 0
    conv: str = ""
    seq: int = 0
    origin: int = 0
    node: str = ""
    sender: int = 0
    ts: int = 0


# ``Revoke.which`` of an admin kick: close every connection of the users with 4002
# (they may reconnect; no token is revoked). Token hashes are hex, never this.
KICK = "kick"


@dataclass(frozen=True, slots=True)
class Revoke:
    """Close ``users``' connections opened with token hash ``which`` (``*``: all of
    them; ``kick``: all, with 4002 and no token revoked), after writing ``frame`` if
    given. Logout, password change, bans and kicks reach every process this way."""

    users: tuple[int, ...]
    which: str
    frame: bytes = b""


@dataclass(frozen=True, slots=True)
class Membership:
    """``user`` joined (or left) ``group``: processes holding the user's sockets start
    (or stop) routing the group to them. A join on one node takes effect on all.
    ``ts``: when it happened (ms); a process ignores one older than the last it applied
    for the same user and group (with several Redis shards copies can arrive late)."""

    user: int
    group: int
    joined: bool
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Unfriended:
    """``a`` and ``b`` are no longer friends: every process forgets that it had found
    them friends, so neither can message the other."""

    a: int
    b: int


@dataclass(frozen=True, slots=True)
class Missed:
    """What one shard's outage may have lost (several Redis shards): the bus messages
    for these users' and these groups' topics in this process. The other shards'
    topics kept flowing."""

    users: frozenset[int]
    groups: frozenset[int]


Control = Revoke | Membership | Unfriended
BusMessage = Delivery | Control

OnDelivery = Callable[[Delivery], None]
OnControl = Callable[[Control], None]
# ``None``: anything may have been lost (the whole bus was down); a :class:`Missed`:
# only what it names.
OnResync = Callable[[Missed | None], None]


def audience(message: BusMessage) -> tuple[tuple[int, ...], int]:
    """``(users, group)`` whose processes must receive ``message``."""
    if isinstance(message, Delivery):
        return message.users, message.group
    if isinstance(message, Revoke):
        return message.users, 0
    if isinstance(message, Membership):
        return (message.user,), 0
    return (message.a, message.b), 0


class Bus(Protocol):
    #: True when every publisher and subscriber is this one process: deliveries then
    #: arrive in commit order already, and nothing else can be in flight.
    in_process: bool

    async def start(self, on_delivery: OnDelivery, on_control: OnControl, on_resync: OnResync | None = None) -> None:
        """Begin handing bus messages (from this and other processes) to the handlers.

        ``on_resync`` is called after the bus comes back from an outage (once the
        subscriptions are active again): deliveries published meanwhile are lost, so
        the local clients must be told to sync: all of them (``None``), or, after one
        shard of several was down, those it names (:class:`Missed`). Never called by a
        bus that cannot fail.
        """

    async def publish(self, message: BusMessage) -> None:
        """At most once: may be lost during an outage (clients then resync). The local
        handlers get it before this returns: local sockets never wait for the bus."""

    def watch_user(self, user_id: int) -> None:
        """This process has a connection of ``user_id``: route its topic here."""

    def unwatch_user(self, user_id: int) -> None: ...

    def watch_group(self, group_id: int) -> None: ...

    def unwatch_group(self, group_id: int) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """Readiness: True if publishes can reach the other processes now. Cheap and
        bounded (a short timeout); never raises."""
