"""Operations endpoints and behaviour (docs/operations.md):

- ``GET /metrics``: Prometheus exposition (every worker's sum in multiprocess mode);
- ``GET /healthz``: the process is alive (no I/O); ``GET /readyz``: the database answers
  a trivial query and the bus is up (cached for a second, 503 while draining);
- the drain on shutdown: stop taking requests, let in-flight ones finish (bounded by
  ``IMHUB_DRAIN_SECONDS``), then close every WebSocket with 1012 "service restart";
- ``/admin/…``: the API behind ``imhub admin`` (bearer ``IMHUB_ADMIN_TOKEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy import text

from imhub import metrics
from imhub.errors import ApiError, RateLimited, Unauthorized
from imhub.protocol.frames import (
    ConversationsRequest,
    HistoryRequest,
    ReadRequest,
    RecallRequest,
    ReceiptsRequest,
    SearchRequest,
    SendMessage,
    SyncRequest,
    TypingRequest,
)
from imhub.protocol.session import Action, Close, Execute, Reply
from imhub.ratelimit import SlidingWindowLimiter
from imhub.web.auth import client_address
from imhub.web.context import SERVICES, Services, services
from imhub.web.responses import ok

log = structlog.get_logger("imhub.ops")

CLOSE_SERVICE_RESTART = 1012
READY_CACHE_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 1.0
METRICS_SYNC_SECONDS = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class DrainState:
    """Shared by the gateway (refuses handshakes, counts in-flight requests) and the drain."""

    draining: bool = False
    inflight: int = 0
    # Set by a second SIGTERM: stop waiting for in-flight work.
    hurry: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)


DRAIN = web.AppKey("drain", DrainState)


@dataclass
class _Readiness:
    checked: float = -1e9
    result: dict[str, Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


READINESS = web.AppKey("readiness", _Readiness)


# --- frames in, by cmd --------------------------------------------------------------------

_REQUEST_CMD: dict[type, str] = {
    SyncRequest: "20",
    ConversationsRequest: "21",
    HistoryRequest: "22",
    ReadRequest: "23",
    TypingRequest: "24",
    RecallRequest: "25",
    ReceiptsRequest: "26",
    SearchRequest: "27",
}


def frame_label(action: Action) -> str:
    """The ``cmd`` label of the frame that produced ``action`` ('invalid': refused)."""
    if isinstance(action, Execute):
        request = action.request
        if isinstance(request, SendMessage):
            return str(request.draft.cmd)
        return _REQUEST_CMD.get(type(request), "other")
    if isinstance(action, Reply):
        return "0" if action.data.startswith(b'{"cmd":0,') else "invalid"
    if isinstance(action, Close):
        return "invalid"
    return "other"


# --- metrics and health -------------------------------------------------------------------


async def metrics_endpoint(_request: web.Request) -> web.Response:
    body, content_type = metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check_ready(request: web.Request) -> dict[str, Any]:
    svc = services(request)

    async def database() -> bool:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    try:
        db_ok = await asyncio.wait_for(database(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("readiness: database unreachable", error=repr(exc))
        db_ok = False
    try:
        bus_ok = await asyncio.wait_for(svc.bus.ping(), READY_TIMEOUT_SECONDS)
    except Exception:
        bus_ok = False
    return {"database": db_ok, "bus": bus_ok}


async def readyz(request: web.Request) -> web.Response:
    if request.app[DRAIN].draining:
        return web.json_response({"ready": False, "draining": True}, status=503)
    cache = request.app[READINESS]
    async with cache.lock:  # one check in flight; pollers share its answer
        now = time.monotonic()
        if now - cache.checked >= READY_CACHE_SECONDS:
            cache.result = await _check_ready(request)
            cache.checked = time.monotonic()
        checks = cache.result
    ready = all(checks.values())
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


async def _sync_metrics(_app: web.Application) -> AsyncIterator[None]:
    """Export the hot-path integers once a second (and once more at exit)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(METRICS_SYNC_SECONDS)
            metrics.sync_hot()

    task = asyncio.create_task(loop(), name="imhub-metrics-sync")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.sync_hot()


# --- drain --------------------------------------------------------------------------------


async def drain(app: web.Application) -> None:
    """Shutdown hook (runs after the listening socket is closed): refuse new work, wait
    up to ``IMHUB_DRAIN_SECONDS`` for in-flight requests (so their acks are written),
    then tell every client to reconnect (1012). The batch writer drains its queue after
    this, in the services' cleanup."""
    state = app[DRAIN]
    svc = app[SERVICES]
    loop = asyncio.get_running_loop()
    state.draining = True
    metrics.draining.set(1)
    hub = svc.node.hub
    began = loop.time()
    deadline = began + svc.settings.drain_seconds
    log.info("draining", connections=hub.connection_count(), inflight=state.inflight,
             max_seconds=svc.settings.drain_seconds)
    while (state.inflight or _acks_pending(svc)) and loop.time() < deadline and not state.hurry.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.hurry.wait(), 0.02)
    # Let the flushes scheduled by the last acks run before the sockets are closed.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    if state.inflight:
        log.warning("drain: requests still in flight; closing anyway (clients resend unacked)",
                    inflight=state.inflight)
    hub.close_all(CLOSE_SERVICE_RESTART, "service restart: reconnect")
    log.info("drained; clients told to reconnect", seconds=round(loop.time() - began, 3))


def _acks_pending(svc: Services) -> int:
    """Work still running: acks waiting for their commit, publishes, receipts."""
    return svc.messaging.pending_work() + svc.node.pending_work()


# --- admin API ----------------------------------------------------------------------------


# Wrong admin tokens one client address may send per minute before it gets 429s (the
# token is long and random; this only keeps guessing slow and visible in the log).
ADMIN_FAILURES_PER_MINUTE = 10
ADMIN_FAILURES = web.AppKey("admin_failures", SlidingWindowLimiter)


def require_admin(request: web.Request) -> None:
    token = services(request).settings.admin_token.get_secret_value()
    if not token:
        raise ApiError("admin API disabled: set IMHUB_ADMIN_TOKEN", status=404)
    failures = request.app[ADMIN_FAILURES]
    address = client_address(request)
    wait = failures.retry_after(address)
    if wait > 0:
        raise RateLimited("too many wrong admin tokens, try again later", retry_after=math.ceil(wait))
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        failures.hit(address)
        log.warning("wrong admin token", address=address, path=request.path)
        raise Unauthorized("admin token required")


def _admin(handler: Callable[[web.Request], Awaitable[dict[str, Any]]]) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        require_admin(request)
        result = await handler(request)
        log.info("admin", action=request.path, **{k: v for k, v in result.items() if k != "users"})
        return ok(result)

    return wrapped


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info.get(name, "")
    if not raw.isdigit() or int(raw) <= 0 or len(raw) > 18:
        raise ApiError(f"bad id {raw!r}", status=400)
    return int(raw)


async def _text(request: web.Request) -> str:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError("body must be JSON: {\"text\": \"...\"}", status=400) from None
    value = body.get("text") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ApiError("text is required", status=400)
    return value


async def admin_online(request: web.Request) -> dict[str, Any]:
    users = await services(request).admin.online()
    return {"count": len(users), "users": users}


async def admin_stats(request: web.Request) -> dict[str, Any]:
    stats = await services(request).admin.stats()
    stats["draining"] = request.app[DRAIN].draining
    return stats


async def admin_kick(request: web.Request) -> dict[str, Any]:
    return await services(request).admin.kick(_id(request))


async def admin_ban(request: web.Request) -> dict[str, Any]:
    return await services(request).admin.ban(_id(request), True)


async def admin_unban(request: web.Request) -> dict[str, Any]:
    return await services(request).admin.ban(_id(request), False)


async def admin_notice_user(request: web.Request) -> dict[str, Any]:
    return await services(request).admin.notice_user(_id(request), await _text(request))


async def admin_notice_group(request: web.Request) -> dict[str, Any]:
    return await services(request).admin.notice_group(_id(request), await _text(request))


def setup(app: web.Application) -> None:
    app[DRAIN] = DrainState()
    app[READINESS] = _Readiness()
    app[ADMIN_FAILURES] = SlidingWindowLimiter(ADMIN_FAILURES_PER_MINUTE, 60)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/admin/online", _admin(admin_online))
    app.router.add_get("/admin/stats", _admin(admin_stats))
    app.router.add_post("/admin/users/{id}/kick", _admin(admin_kick))
    app.router.add_post("/admin/users/{id}/ban", _admin(admin_ban))
    app.router.add_post("/admin/users/{id}/unban", _admin(admin_unban))
    app.router.add_post("/admin/users/{id}/notice", _admin(admin_notice_user))
    app.router.add_post("/admin/groups/{id}/notice", _admin(admin_notice_group))
    app.cleanup_ctx.append(_sync_metrics)
