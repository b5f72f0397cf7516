"""A small in-memory sliding-window rate limiter.

Per key, it remembers the times of the last ``limit`` events; an event is allowed while
fewer than ``limit`` happened in the last ``window`` seconds. Exact (no bucket edges to
game), O(limit) memory per key, and bounded overall: once ``max_keys`` keys are held,
the stalest ones are dropped — an attacker spraying keys can only make the limiter
forget, never make the process grow.

It is per process: with N workers a client gets up to N × limit. That is acceptable
for its uses (login guessing, lookups), which need "slow", not "exact across nodes".
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        # Least recently touched key first, so eviction drops the stalest.
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def _live(self, key: Hashable, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        horizon = now - self.window
        while events and events[0] <= horizon:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: Hashable) -> float:
        """Seconds until ``key`` may act again; 0.0 if it may act now."""
        now = self._clock()
        events = self._live(key, now)
        if events is None or len(events) < self.limit:
            return 0.0
        return max(events[0] + self.window - now, 0.0)

    def hit(self, key: Hashable) -> None:
        """Record one event for ``key`` (whether or not it was allowed)."""
        now = self._clock()
        events = self._live(key, now)
        if events is None:
            events = deque(maxlen=self.limit)
            self._events[key] = events
            while len(self._events) > self._max_keys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        events.append(now)

    def allow(self, key: Hashable) -> bool:
        """Check and record in one step: True (and counted) if ``key`` may act now."""
        if self.retry_after(key) > 0:
            return False
        self.hit(key)
        return True

    def reset(self, key: Hashable) -> None:
        """Forget ``key`` (e.g. after a successful login)."""
        self._events.pop(key, None)

    def __len__(self) -> int:
        return len(self._events)


class DistinctLimiter:
    """Per key, how many *distinct* members were seen in the last ``window`` seconds
    (e.g. accounts tried from one address): a member seen again costs nothing, so
    people behind one NAT retrying their own passwords do not add up, while one
    address spraying many accounts does. Bounded like :class:`SlidingWindowLimiter`."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window = window_seconds
        self._max_keys = max_keys
        self._clock = clock
        # key -> member -> last seen; members oldest first.
        self._seen: OrderedDict[Hashable, OrderedDict[Hashable, float]] = OrderedDict()

    def _live(self, key: Hashable, now: float) -> OrderedDict[Hashable, float] | None:
        members = self._seen.get(key)
        if members is None:
            return None
        horizon = now - self.window
        while members and next(iter(members.values())) <= horizon:
            members.popitem(last=False)
        if not members:
            del self._seen[key]
            return None
        return members

    def retry_after(self, key: Hashable, member: Hashable) -> float:
        """Seconds until ``member`` may be tried under ``key``; 0.0 if now (always 0.0
        for a member already counted)."""
        now = self._clock()
        members = self._live(key, now)
        if members is None or member in members or len(members) < self.limit:
            return 0.0
        return max(next(iter(members.values())) + self.window - now, 0.0)

    def hit(self, key: Hashable, member: Hashable) -> None:
        now = self._clock()
        members = self._live(key, now)
        if members is None:
            members = self._seen[key] = OrderedDict()
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        members[member] = now
        members.move_to_end(member)
        while len(members) > self.limit:
            members.popitem(last=False)

    def forget(self, key: Hashable, member: Hashable) -> None:
        """Stop counting ``member`` under ``key`` (e.g. it logged in successfully)."""
        members = self._seen.get(key)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
