"""This process's registry of live connections, and local fan-out.

``users``: user id -> that user's connections here. ``groups``: group id -> the ids of
members with a connection here, kept current by :meth:`join` / :meth:`leave` when a
connected user joins or leaves. Fan-out walks only local sockets; the bus brings each
delivery to each process once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from imhub import metrics
from imhub.bus.base import KICK, Delivery, Revoke
from imhub.gateway.connection import Connection
from imhub.protocol.seed import seed_frame
from imhub.protocol.session import CLOSE_REVOKED

CLOSE_KICKED = 4002
_HOT = metrics.HOT
_NOBODY: tuple[int, ...] = ()
_UNSET = b"unset"  # a seed view not worked out yet (None: seed clients get nothing)


class Hub:
    def __init__(self, node_id: str, seed_group_events: bool = False) -> None:
        self.node_id = node_id
        # Whether seed clients get group events as a text message (else nothing).
        self.seed_group_events = seed_group_events
        self.users: dict[int, list[Connection]] = {}
        self.groups: dict[int, set[int]] = {}
        self._groups_of: dict[int, set[int]] = {}
        # (user, conv) -> highest seq handed to one of the user's sockets, not yet
        # saved; drained by the gateway node into the delivered cursors.
        self._delivered: dict[tuple[int, str], int] = {}
        # group id -> highest seq fanned out here (for members' delivered cursors).
        self.group_seq: dict[int, int] = {}
        # Start times of this loop turn's fan-outs, observed once the turn's writes ran.
        self._fanout_started: list[float] = []

    # --- registry ------------------------------------------------------------------

    def add(self, conn: Connection, group_ids: list[int]) -> bool:
        """Register ``conn``; True if it is its user's first connection here."""
        conns = self.users.get(conn.user_id)
        if conns is not None:
            conns.append(conn)
            return False
        self.users[conn.user_id] = [conn]
        self._groups_of[conn.user_id] = set(group_ids)
        for gid in group_ids:
            self.groups.setdefault(gid, set()).add(conn.user_id)
        return True

    def remove(self, conn: Connection) -> bool:
        """Unregister ``conn``; True if its user has no connection here any more."""
        conns = self.users.get(conn.user_id)
        if not conns or conn not in conns:
            return False
        conns.remove(conn)
        if conns:
            return False
        del self.users[conn.user_id]
        for gid in self._groups_of.pop(conn.user_id, ()):
            self._drop_member(gid, conn.user_id)
            # Everything of the group fanned out here while the user was online went
            # to their sockets — unless this one was dropped as a slow consumer.
            seq = self.group_seq.get(gid, 0)
            if seq and not conn.dropped_frames and not conn.catching_up:
                self.note_delivered(conn.user_id, f"g{gid}", seq)
        return True

    def join(self, group_id: int, user_id: int) -> bool:
        """A member joined: if connected here, start routing the group to them.
        True if this made the group locally present (first local member)."""
        groups = self._groups_of.get(user_id)
        if groups is None or group_id in groups:
            return False
        groups.add(group_id)
        members = self.groups.setdefault(group_id, set())
        members.add(user_id)
        return len(members) == 1

    def leave(self, group_id: int, user_id: int) -> bool:
        """A member left: stop routing. True if no local member remains."""
        groups = self._groups_of.get(user_id)
        if groups is None or group_id not in groups:
            return False
        groups.discard(group_id)
        return self._drop_member(group_id, user_id)

    def _drop_member(self, group_id: int, user_id: int) -> bool:
        members = self.groups.get(group_id)
        if members is None:
            return False
        members.discard(user_id)
        if not members:
            del self.groups[group_id]
            return True
        return False

    def groups_of(self, user_id: int) -> set[int]:
        return self._groups_of.get(user_id, set())

    def connection_count(self) -> int:
        return sum(len(c) for c in self.users.values())

    # --- fan-out -------------------------------------------------------------------

    def deliver(self, d: Delivery) -> tuple[int, ...]:
        """Push ``d.frame`` to every local socket it is for (not to its origin). Returns
        the recipients of a 1:1 message (``d.sender`` set) whose socket here was given
        it, other than the sender: they owe the sender a 'delivered' receipt. A socket
        that is catching up holds the frame instead (the gateway node sends the receipt
        when it is written)."""
        origin = d.origin if d.node == self.node_id else 0
        conv, seq, frame, sender = d.conv, d.seq, d.frame, d.sender
        seed: bytes | None = _UNSET
        pushed = 0
        reached = _NOBODY
        if d.group:
            # Group messages: no per-member bookkeeping in the fan-out loop (10k
            # members x every message). Members online here get the whole stream;
            # their delivered cursor is set from group_seq when they disconnect.
            if seq > self.group_seq.get(d.group, 0):
                self.group_seq[d.group] = seq
            for uid in tuple(self.groups.get(d.group, ())):
                for conn in self.users.get(uid, ()):
                    if conn.id == origin:
                        continue
                    if conn.seed:
                        if seed is _UNSET:
                            seed = self._seed_view(d)
                        if seed is not None and conn.push(seed, conv, seq):
                            pushed += 1
                    elif conn.push(frame, conv, seq):
                        pushed += 1
        else:
            delivered = self._delivered
            for uid in d.users:
                conns = self.users.get(uid)
                if not conns:
                    continue
                given = False
                for conn in conns:
                    if conn.id == origin:
                        continue
                    if conn.seed:
                        if seed is _UNSET:
                            seed = self._seed_view(d)
                        if seed is not None and conn.push(seed, conv, seq, sender):
                            pushed += 1
                            given = True
                    elif conn.push(frame, conv, seq, sender):
                        pushed += 1
                        given = True
                if seq and given:
                    key = (uid, conv)
                    if delivered.get(key, 0) < seq:
                        delivered[key] = seq
                    if sender and uid != sender:
                        reached = (*reached, uid)
        if pushed and seq:
            # Once per delivery, never per socket. The flushes were scheduled above,
            # so the callback runs after the socket writes of this fan-out; one
            # callback per loop turn for all of the turn's deliveries.
            _HOT.deliveries += pushed
            _HOT.delivery_bytes += pushed * len(frame)
            self._fanout_started.append(time.perf_counter())
            if len(self._fanout_started) == 1:
                asyncio.get_running_loop().call_soon(self._observe_fanouts)
        return reached

    def _seed_view(self, d: Delivery) -> bytes | None:
        """``d`` as seed clients get it: messages only (imhub.protocol.seed)."""
        if not d.seq:
            return None
        return seed_frame(d.frame, self.seed_group_events)

    def _observe_fanouts(self) -> None:
        started, self._fanout_started = self._fanout_started, []
        end = time.perf_counter()
        metrics.observe_many(metrics.deliver_seconds, [end - t for t in started])

    def note_delivered(self, user_id: int, conv: str, seq: int) -> None:
        key = (user_id, conv)
        if self._delivered.get(key, 0) < seq:
            self._delivered[key] = seq

    def revoke(self, r: Revoke) -> None:
        """Close the sockets ``r`` names (see :class:`~imhub.bus.base.Revoke`)."""
        for uid in r.users:
            for conn in list(self.users.get(uid, ())):
                if r.which == KICK:
                    conn.close(CLOSE_KICKED, "disconnected by an administrator")
                elif r.which == "*" or conn.token_hash == r.which:
                    if r.frame:
                        conn.push_reply(r.frame)
                    conn.close(CLOSE_REVOKED, "logged out")

    def broadcast(self, frame: bytes, users: Iterable[int] | None = None) -> list[Connection]:
        """Push ``frame`` to every modern socket of this process, or of ``users`` (e.g.
        "resync" after a bus outage); returns the seed sockets, which cannot take it."""
        seeds = []
        targets = self.users.values() if users is None else [self.users.get(u, ()) for u in users]
        for conns in targets:
            for conn in conns:
                if conn.seed:
                    seeds.append(conn)
                else:
                    conn.push(frame)
        return seeds

    def take_delivered(self) -> list[tuple[int, str, int]]:
        marks, self._delivered = self._delivered, {}
        return [(u, c, s) for (u, c), s in marks.items()]

    def close_all(self, code: int, reason: str, user_id: int | None = None) -> None:
        targets = [self.users.get(user_id, [])] if user_id is not None else list(self.users.values())
        for conns in targets:
            for conn in list(conns):
                conn.close(code, reason)
