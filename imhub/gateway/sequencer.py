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
which also sends everyone cmd 37) then goes out as it is, and clients sync.

The first message of a conversation this process has no baseline for (a fresh or idle
worker, a group whose last local member had left) is held too, while the baseline is
read from the store (``settled``): the highest seq stored more than
:data:`FIRST_SIGHT_SECONDS` ago, which must have reached this process already or never
will. Messages after it go out in order, waiting at most that long for any still in
flight. (Without a
store, the first message is the baseline: the old behaviour, kept for tests.) A
conversation's baseline is forgotten when this process stops receiving it, but never
while some of its messages are held. Events (receipts, typing, presence, recalls) are
never held; controls never come here.

Both waits assume the bus delivers within them. A loaded box can lag seconds behind
(perf7-loss.md: 60-380 messages out of order at load 8-10), so each wait also grows by
twice the most a message took from its store time to reach this process lately
(:class:`BusLag`), up to :data:`MAX_WAIT_SECONDS`; a wait already running follows the
lag when it ends. Store time and arrival are both wall clocks: a skew between nodes
counts as lag (longer waits), never as less.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from imhub import metrics
from imhub.bus.base import Delivery
from imhub.clock import now_ms

log = structlog.get_logger("imhub.gateway")

GAP_WAIT_SECONDS = 1.0
# A conversation seen for the first time here: messages stored longer ago than this have
# reached this process or never will, so they form the baseline; the first message
# waits at most this long for newer ones still in flight (a publish takes milliseconds;
# those committed before this process subscribed never come).
FIRST_SIGHT_SECONDS = 0.25
# Every wait grows by LAG_FACTOR times the bus's recent lag, up to MAX_WAIT_SECONDS (a
# real gap, a publish lost while the bus was down, is resynced by the clients anyway).
LAG_FACTOR = 2
MAX_WAIT_SECONDS = 30.0
# The lag is the most seen over the last LAG_MEMORY_SECONDS to twice that.
LAG_MEMORY_SECONDS = 5.0
# Conversations remembered at most; past that the memory is dropped (harmless: each
# conversation's next message becomes its new starting point).
MAX_TRACKED = 200_000
# A failed baseline read is retried after this long, doubling up to the cap.
BASELINE_RETRY_SECONDS = 0.1
BASELINE_RETRY_CAP_SECONDS = 2.0


# Baselines read in one statement at most.
BASELINE_BATCH = 200

# [(conv, before_ts)] -> each conv's highest seq stored before its before_ts (ms): when
# this process first saw it, less FIRST_SIGHT_SECONDS.
Settled = Callable[[list[tuple[str, int]]], Awaitable[dict[str, int]]]


class BusLag:
    """The most a message took lately from its store time to reaching this process (ms),
    kept in two spans of :data:`LAG_MEMORY_SECONDS`: the current one and the last."""

    __slots__ = ("_current", "_previous", "_span_end")

    def __init__(self) -> None:
        self._current = self._previous = 0
        self._span_end = 0

    def _roll(self, now: int) -> None:
        span = int(LAG_MEMORY_SECONDS * 1000)
        # The span just ended becomes the last one; after a longer quiet both are empty.
        self._previous = self._current if now < self._span_end + span else 0
        self._current = 0
        self._span_end = now + span

    def observe(self, ts: int, now: int) -> None:
        if now >= self._span_end:
            self._roll(now)
        if now - ts > self._current:
            self._current = now - ts

    def recent(self, now: int) -> int:
        if now >= self._span_end:
            self._roll(now)
        return max(self._current, self._previous)


class Sequencer:
    def __init__(self, deliver: Callable[[Delivery], None], settled: Settled | None = None) -> None:
        self._deliver = deliver
        self._settled = settled
        self._last: dict[str, int] = {}  # conv -> the seq let through last
        self._held: dict[str, dict[int, Delivery]] = {}
        # conv -> whether its first-sight wait ran out while the baseline was being read
        self._reading: dict[str, bool] = {}
        # Conversations whose baselines are wanted: read together by one task, those
        # that come while a read is in flight in the next (when the sending starts,
        # every conversation is new to every process at once: perf7-loss.md).
        self._wanted: list[tuple[str, int]] = []  # (conv, before_ts)
        self._reader: asyncio.Task[None] | None = None
        self.lag = BusLag()
        self.released_on_timeout = 0  # messages let through with a gap still open

    def submit(self, env: Delivery) -> None:
        conv, seq = env.conv, env.seq
        if not seq or not conv:
            self._deliver(env)
            return
        if env.ts:
            self.lag.observe(env.ts, now_ms())
        last = self._last.get(conv)
        if last is None and self._settled is not None:
            first = conv not in self._reading
            self._hold(conv, env, FIRST_SIGHT_SECONDS)
            if first:
                self._reading[conv] = False
                # The cut-off is from when it was first seen, not from when the read
                # runs: a read queued behind others would otherwise count messages
                # still on their way here as delivered (out of order when they come).
                now = now_ms()
                self._wanted.append((conv, now - int(self._wait(FIRST_SIGHT_SECONDS, now) * 1000)))
                if self._reader is None:
                    self._reader = asyncio.get_running_loop().create_task(self._read_wanted())
        elif last is None or seq == last + 1:
            self._pass(conv, env)
            self._release_consecutive(conv)
        elif seq <= last:
            metrics.messages_late.inc()
            self._deliver(env)  # late, after its gap was given up on: still deliver it
        else:
            self._hold(conv, env, GAP_WAIT_SECONDS)

    def _wait(self, floor: float, now: int) -> float:
        """Seconds to wait for what is in flight: ``floor`` plus the bus's lag."""
        return min(MAX_WAIT_SECONDS, floor + LAG_FACTOR * self.lag.recent(now) / 1000)

    def _hold(self, conv: str, env: Delivery, floor: float) -> None:
        held = self._held.get(conv)
        if held is None:
            held = self._held[conv] = {}
            loop = asyncio.get_running_loop()
            loop.call_later(self._wait(floor, now_ms()), self._give_up, conv, held, floor, loop.time())
        held[env.seq] = env
        metrics.messages_held.inc()

    async def _read_wanted(self) -> None:
        wanted = self._wanted
        delay = BASELINE_RETRY_SECONDS
        try:
            while wanted:
                batch = wanted[:BASELINE_BATCH]
                try:
                    assert self._settled is not None
                    baselines = await self._settled(batch)
                except Exception as e:
                    # Never guess: the messages stay held until the store answers.
                    log.warning("reading conversations' baselines failed; retrying", convs=len(batch),
                                retry_in=delay, error=f"{type(e).__name__}: {e}")
                    metrics.baseline_read_failures.inc()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BASELINE_RETRY_CAP_SECONDS)
                    continue
                delay = BASELINE_RETRY_SECONDS
                del wanted[:len(batch)]
                for conv, _ in batch:
                    try:
                        self._settle(conv, baselines.get(conv, 0))
                    except Exception:
                        log.exception("delivering held messages failed", conv=conv)
        finally:
            self._reader = None

    def _settle(self, conv: str, baseline: int) -> None:
        expired = self._reading.pop(conv, False)
        held = self._held.get(conv, {})
        for seq in sorted(s for s in held if s <= baseline):  # older than the baseline: late
            self._deliver(held.pop(seq))
        if not held:
            self._held.pop(conv, None)
        self._last[conv] = baseline
        self._release_consecutive(conv)
        rest = self._held.get(conv)
        if expired and rest:  # the wait is over: what is still missing never comes
            self._release(conv, rest)

    def forget(self, conv: str) -> None:
        """This process stops receiving ``conv`` (e.g. a group's last member here left)."""
        if conv not in self._held:
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

    def _give_up(self, conv: str, held: dict[int, Delivery], floor: float, since: float) -> None:
        if self._held.get(conv) is not held:
            return  # released in order meanwhile (a newer wait may be running)
        loop = asyncio.get_running_loop()
        left = self._wait(floor, now_ms()) - (loop.time() - since)
        if left > 0.001:  # the bus fell further behind since the wait began
            loop.call_later(left, self._give_up, conv, held, floor, since)
            return
        if conv in self._reading:
            self._reading[conv] = True  # released once the baseline is known
            return
        self._release(conv, held)

    def _release(self, conv: str, held: dict[int, Delivery]) -> None:
        del self._held[conv]
        for seq in sorted(held):
            self.released_on_timeout += 1
            metrics.messages_gap_released.inc()
            try:  # a timer callback: nobody above would catch it
                self._pass(conv, held[seq])
            except Exception:
                log.exception("delivering a held message failed", conv=conv, seq=seq)
