"""Put each conversation's messages back in seq order before the hub fans them out.

With several workers, two messages of one conversation can be committed by different
processes (a group's members on two workers, the two sides of a 1:1 chat): seq 5
commits on worker A, seq 6 on worker B a moment later, but B's publish may reach a
third process first. Clients would see 6 before 5 (measured: 4.6 % of deliveries out
of order in a 20k-user mixed run on 2 workers). The protocol lets a client repair that
by syncing on a gap, but an IM should just deliver in order.

So every delivery passes through here. Per conversation this process remembers the
last seq it let through; a message that skips ahead is held until the missing ones
arrive (normally within milliseconds: the other worker's publish is in flight) or
:data:`GAP_WAIT_SECONDS` passes — a real gap (a publish lost while the bus was down,
which also sends everyone cmd 37) then goes out as it is, and clients sync. When this
process stops receiving a group (its last member here left), the group is forgotten,
so its next message starts afresh; a 1:1 conversation that went on while neither side
was connected here costs its first message here one wait. Events (receipts,
typing, presence, recalls) are never held; controls never come here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from imhub import metrics
from imhub.bus.base import Delivery

log = structlog.get_logger("imhub.gateway")

GAP_WAIT_SECONDS = 1.0
# Conversations remembered at most; past that the memory is dropped (harmless: each
# conversation's next message becomes its new starting point).
MAX_TRACKED = 200_000


class Sequencer:
    def __init__(self, deliver: Callable[[Delivery], None]) -> None:
        self._deliver = deliver
        self._last: dict[str, int] = {}  # conv -> the seq let through last
        self._held: dict[str, dict[int, Delivery]] = {}
        self.released_on_timeout = 0  # messages let through with a gap still open

    def submit(self, env: Delivery) -> None:
        conv, seq = env.conv, env.seq
        if not seq or not conv:
            self._deliver(env)
            return
        last = self._last.get(conv)
        if last is None or seq == last + 1:
            self._pass(conv, env)
            self._release_consecutive(conv)
        elif seq <= last:
            self._deliver(env)  # late, after its gap was given up on: still deliver it
        else:
            held = self._held.get(conv)
            if held is None:
                held = self._held[conv] = {}
                asyncio.get_running_loop().call_later(GAP_WAIT_SECONDS, self._give_up, conv, held)
            held[seq] = env
            metrics.messages_held.inc()

    def forget(self, conv: str) -> None:
        """This process stops receiving ``conv`` (e.g. a group's last member here left)."""
        self._last.pop(conv, None)

    def _pass(self, conv: str, env: Delivery) -> None:
        if len(self._last) >= MAX_TRACKED:
            self._last.clear()
        self._last[conv] = env.seq
        self._deliver(env)

    def _release_consecutive(self, conv: str) -> None:
        held = self._held.get(conv)
        if not held:
            return
        nxt = self._last[conv] + 1
        while nxt in held:
            self._pass(conv, held.pop(nxt))
            nxt += 1
        if not held:
            del self._held[conv]

    def _give_up(self, conv: str, held: dict[int, Delivery]) -> None:
        if self._held.get(conv) is not held:
            return  # released in order meanwhile (a newer wait may be running)
        del self._held[conv]
        for seq in sorted(held):
            self.released_on_timeout += 1
            metrics.messages_gap_released.inc()
            try:  # a timer callback: nobody above would catch it
                self._pass(conv, held[seq])
            except Exception:
                log.exception("delivering a held message failed", conv=conv, seq=seq)
