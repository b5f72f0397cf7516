"""The in-process bus: publish hands the message straight to this process's handlers."""

from __future__ import annotations

from imhub import metrics
from imhub.bus.base import BusMessage, Delivery, OnControl, OnDelivery, OnResync

_published = metrics.bus_published.labels("local")


class LocalBus:
    in_process = True

    def __init__(self) -> None:
        self._on_delivery: OnDelivery | None = None
        self._on_control: OnControl | None = None

    async def start(self, on_delivery: OnDelivery, on_control: OnControl, on_resync: OnResync | None = None) -> None:
        # Nothing between publisher and subscriber can fail: on_resync is never called.
        self._on_delivery = on_delivery
        self._on_control = on_control

    async def publish(self, message: BusMessage) -> None:
        _published.inc()
        if isinstance(message, Delivery):
            if self._on_delivery is not None:
                self._on_delivery(message)
        elif self._on_control is not None:
            self._on_control(message)

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
        self._on_delivery = None
        self._on_control = None

    async def ping(self) -> bool:
        return True  # nothing between publisher and subscriber
