"""The in-process bus: publish hands the envelope straight to this process's hub."""

from __future__ import annotations

from imhub import metrics
from imhub.bus.base import Deliver, Envelope, Resync

_published = metrics.bus_published.labels("local")


class LocalBus:
    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, on_resync: Resync | None = None) -> None:
        # Nothing between publisher and subscriber can fail: on_resync is never called.
        self._deliver = deliver

    async def publish(self, envelope: Envelope) -> None:
        _published.inc()
        if self._deliver is not None:
            self._deliver(envelope)

    # One process sees everything already; interest needs no bookkeeping.
    def watch_user(self, user_id: int) -> None:
        pass

    def unwatch_user(self, user_id: int) -> None:
        pass

    def watch_group(self, group_id: int) -> None:
        pass

    def unwatch_group(self, group_id: int) -> None:
        pass

    async def close(self) -> None:
        self._deliver = None

    async def ping(self) -> bool:
        return True  # nothing between publisher and subscriber
