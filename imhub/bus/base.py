"""The bus between server processes: a best-effort doorbell, never the truth.

Every message is stored before it is published, so a lost publish only delays a
client until it syncs. Backends (``local``, ``redis``) only move :class:`Envelope`s;
all routing to sockets happens in :mod:`imhub.gateway.hub`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    """One published event.

    ``users``: deliver ``frame`` to every connection of these users. ``group``: to every
    local connection of the group's members. ``frame`` is a complete WebSocket frame
    (header + JSON), encoded once by the publisher and written as-is to every socket.
    ``conv``/``seq`` identify a message (empty/0 for other events); ``origin`` is the
    publishing connection's id on node ``node``, which gets an ack instead of a copy.
    ``sender`` is set on 1:1 messages: reaching the recipient triggers a 'delivered'
    receipt back to the sender. ``revoke`` (a token hash, or ``*`` for all) closes the
    matching connections of ``users`` with code 4001 after writing ``frame``: logout,
    password change and bans reach every process this way. ``membership`` (a group id,
    negative for leaving) tells the processes holding ``users``' sockets to start or stop
    routing that group to them: a join on one node takes effect on every node at once.
    ``unfriended`` (with ``conv`` the pair's 1:1 conversation): the two users are no
    longer friends; every process holding one of their sockets forgets that it had
    found them friends, so neither can message the other from any node.
    """

    users: tuple[int, ...]
    group: int
    frame: bytes
    conv: str = ""
    seq: int = 0
    origin: int = 0
    node: str = ""
    sender: int = 0
    revoke: str = ""
    membership: int = 0
    unfriended: bool = False


Deliver = Callable[[Envelope], None]
Resync = Callable[[], None]


class Bus(Protocol):
    async def start(self, deliver: Deliver, on_resync: Resync | None = None) -> None:
        """Begin delivering envelopes (from this and other processes) to ``deliver``.

        ``on_resync`` is called after the bus comes back from an outage (once the
        subscriptions are active again): envelopes published meanwhile are lost, so
        every local client must be told to sync. Never called by a bus that cannot fail.
        """

    async def publish(self, envelope: Envelope) -> None:
        """At most once: may be lost during an outage (clients then resync)."""

    def watch_user(self, user_id: int) -> None:
        """This process has a connection of ``user_id``: route its topic here."""

    def unwatch_user(self, user_id: int) -> None: ...

    def watch_group(self, group_id: int) -> None: ...

    def unwatch_group(self, group_id: int) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """Readiness: True if publishes can reach the other processes now. Cheap and
        bounded (a short timeout); never raises."""
