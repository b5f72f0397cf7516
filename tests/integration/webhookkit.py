"""A real HTTP receiver for webhook tests: an aiohttp server on a port of its own that
checks each delivery's signature (a bad one is answered 401, so it would be retried and
the test would see it missing) and records what it accepted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: HMAC-SHA256 over ``timestamp + "." + body``."""
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header) and abs(time.time() - int(timestamp)) < 300


@dataclass
class Receiver:
    secret: str
    port: int
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected_signatures: int = 0
    # Answer the next N deliveries with 500 (the endpoint is there but failing).
    fail_next: int = 0
    handler: Callable[[dict[str, Any]], Awaitable[web.Response]] | None = None
    _runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        if not verify(self.secret, h.get("X-Imhub-Timestamp", "0"), body, h.get("X-Imhub-Signature", "")):
            self.rejected_signatures += 1
            return web.Response(status=401)
        event = orjson.loads(body)
        assert event["id"] == h["X-Imhub-Event-Id"] and event["type"] == h["X-Imhub-Event"]
        if self.handler is not None:
            return await self.handler(event)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500)
        self.events.append(event)
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e for e in self.events
            if e["type"] == kind and all(e["data"].get(k) == v for k, v in match.items())
        ]

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 20.0, what: str = "deliveries") -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {[e['type'] for e in self.events]}")
            await asyncio.sleep(0.05)
