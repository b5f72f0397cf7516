"""Webhooks (docs/server-api.md "Webhooks"): events for the operator's HTTPS endpoints,
through a durable outbox, and the optional before-send hook.

- Events (``message.stored``, ``message.recalled``, ``user.online``, ``user.offline``,
  ``friend.request``, ``group.member``) are handed to :meth:`WebhookService.emit` by
  the listeners :func:`imhub.app.build_services` registers. Each gets an event id; the
  events of one loop turn are written to the outbox (``webhook_deliveries``, one row
  per subscribed endpoint) in one transaction, shortly after the change committed.
- One process drains the outbox: whoever holds the ``webhooks`` lease row (renewed
  every poll; a dead holder's lease runs out after ``IMHUB_WEBHOOK_LEASE_SECONDS``).
  Per (endpoint, ordering key — the conversation, or the user or request) only the
  oldest pending delivery is attempted: a conversation's next event waits for its
  previous one. A failure is retried with exponential backoff until
  ``IMHUB_WEBHOOK_RETRY_SECONDS`` after the event, then given up (state ``failed``).
- Each delivery is signed: ``X-Imhub-Signature: v1=<hex HMAC-SHA256(secret,
  timestamp + "." + body)>`` with ``X-Imhub-Timestamp`` (Unix seconds) and
  ``X-Imhub-Event-Id`` (receivers deduplicate by it: delivery is at least once).

Endpoint secrets are never logged and never listed after :meth:`add` returns them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import aiohttp
import orjson
import structlog

from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import MAX_CONTENT_CHARS, Cmd, Draft, Media, Message
from imhub.domain.urls import split_url
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import message_dict
from imhub.services.social import GroupChange
from imhub.store.webhooks import Due, Endpoint, Outgoing, WebhookStore

log = structlog.get_logger("imhub.webhooks")

EVENTS = ("message.stored", "message.edited", "message.recalled", "user.online", "user.offline", "friend.request",
          "group.member")
LEASE = "webhooks"
# How often every process re-reads the endpoint list (one added by `imhub webhook add`
# is used from then on).
ENDPOINT_REFRESH_SECONDS = 2.0
DUE_BATCH = 100
CONCURRENT_DELIVERIES = 16
PRUNE_EVERY_SECONDS = 600.0
KEEP_FINISHED_MS = 7 * 24 * 3600 * 1000
MEMBER_CHANGES = ("created", "joined", "left", "removed")
# The drainer looks this often for stored messages whose message.stored event the live
# path did not enqueue (lost in a crash between the commit and the outbox write), among
# those at least RECONCILE_SETTLE_MS old (committed by then), RECONCILE_BATCH at a time.
RECONCILE_SECONDS = 5.0
RECONCILE_SETTLE_MS = 10_000
RECONCILE_BATCH = 500
MESSAGE_CURSOR = "message.stored"
# A delivery is attempted once it is this old: an event of the same conversation with an
# earlier seq, committed at the same moment on another worker, is in the outbox by then.
SETTLE_MS = 200
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_url(url: str, allow_loopback_http: bool) -> str:
    """An https:// URL (http:// only to this machine, when the setting allows it)."""
    parts = split_url(url)
    if len(url) > 512 or not parts.hostname:
        raise Refused(ErrorCode.BAD_URL, "the URL must be an absolute https:// URL of at most 512 characters",
                      status=400)
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and allow_loopback_http and parts.hostname in LOOPBACK:
        return url
    raise Refused(ErrorCode.BAD_URL, "webhook URLs must be https:// (http://127.0.0.1 only with "
                  "IMHUB_WEBHOOK_ALLOW_HTTP_LOOPBACK=true)", status=400)


def parse_events(text: str) -> list[str]:
    events = sorted({e.strip() for e in text.split(",") if e.strip()})
    if "*" in events:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise Refused(ErrorCode.BAD_PARAM, f"events must be * or a comma-separated subset of {','.join(EVENTS)}",
                      status=400)
    return events


def message_event(m: Message) -> str | None:
    """The webhook event a stored message is: ``message.stored`` for a message,
    ``message.edited`` for an edit update (media 11, memo ``edited``), nothing for other
    updates (reactions, pins: state, not news) nor a user's own stream ``u<id>`` (what
    they hid, pinned or muted concerns only their devices)."""
    if m.conv.startswith("u"):
        return None
    if m.media == Media.UPDATE:
        return "message.edited" if m.memo == "edited" else None
    return "message.stored"


def event_data(m: Message) -> dict[str, Any]:
    """The ``data`` of :func:`message_event`'s event: the message, or for an edit the
    edited message's id, seq and new text, who edited it and when."""
    if m.media != Media.UPDATE:
        return message_dict(m)
    change = orjson.loads(m.content) if m.content else {}
    return {"conv": m.conv, "id": m.amount, "seq": change.get("seq"), "userid": m.userid,
            "content": change.get("content", ""), "edited_at": change.get("edited_at", m.ts)}


def stored_event_id(m: Message) -> str:
    """A message's message.stored event id: the same from the live path and from the
    catch-up (:meth:`WebhookService._reconcile`), so the outbox holds it once."""
    return f"evt_msg_{m.id}"


def _body(event_id: str, event: str, data: dict[str, Any]) -> str:
    return orjson.dumps({"id": event_id, "type": event, "ts": now_ms(), "data": data}).decode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Imhub-Signature`` header's value."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, event_id: str, event: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "imhub-webhooks",
        "X-Imhub-Event": event,
        "X-Imhub-Event-Id": event_id,
        "X-Imhub-Timestamp": timestamp,
        "X-Imhub-Signature": signature(secret, timestamp, body),
    }


class WebhookService:
    def __init__(self, settings: Settings, store: WebhookStore, node_id: str) -> None:
        self._settings = settings
        self._store = store
        self._node = node_id
        self._endpoints: list[Endpoint] = []
        self._subscribed: frozenset[str] = frozenset()
        self._buffer: list[tuple[str, str, str, int, str]] = []  # (event id, event, okey, pos, body)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._leader = False

    # --- endpoints (the CLI) ----------------------------------------------------------

    async def add(self, url: str, events: str, secret: str = "") -> tuple[Endpoint, str]:
        """Register an endpoint; returns it and its signing secret (generated unless
        given), which is not shown again."""
        url = check_url(url, self._settings.webhook_allow_http_loopback)
        secret = secret or "whsec_" + secrets.token_urlsafe(32)
        if not 16 <= len(secret) <= 128:
            raise Refused(ErrorCode.BAD_PARAM, "a secret must be 16-128 characters", status=400)
        return await self._store.add_endpoint(url, secret, parse_events(events)), secret

    async def endpoints(self) -> list[Endpoint]:
        return await self._store.endpoints()

    async def outbox_states(self) -> dict[str, int]:
        """Deliveries per state (pending, done, failed)."""
        return await self._store.states()

    async def attempted(self) -> bool:
        """Has any pending delivery been tried (and failed) already?"""
        return await self._store.any_retrying()

    async def remove(self, endpoint_id: int) -> None:
        if not await self._store.remove_endpoint(endpoint_id):
            raise Refused(ErrorCode.NOT_FOUND, f"no webhook endpoint {endpoint_id}", status=404)

    # --- events in ------------------------------------------------------------------

    def emit(self, event: str, okey: str, data: dict[str, Any], pos: int = 0, event_id: str = "") -> None:
        """Queue an event for every endpoint subscribed to it (written to the outbox at
        the end of this loop turn), delivered in ``pos`` order (then emit order) among
        the events of ``okey``. Costs nothing while no endpoint wants it."""
        if event not in self._subscribed:
            return
        event_id = event_id or "evt_" + uuid.uuid4().hex
        body = _body(event_id, event, data)
        self._buffer.append((event_id, event, okey, pos, body))
        if len(self._buffer) == 1:
            self._spawn(self._flush())

    def message_stored(self, m: Message) -> None:
        event = message_event(m)
        if event in self._subscribed:  # every message passes here: build nothing otherwise
            self.emit(event, m.conv, event_data(m), m.seq, stored_event_id(m))

    def message_recalled(self, m: Message) -> None:
        self.emit("message.recalled", m.conv, {"conv": m.conv, "id": m.id, "seq": m.seq, "userid": m.userid}, m.seq)

    def presence(self, user_id: int, online: bool, when: int) -> None:
        self.emit("user.online" if online else "user.offline", f"u{user_id}",
                  {"userid": user_id, "online": online, "last_seen": when})

    async def on_social_event(self, users: tuple[int, ...], cmd: int, body: dict[str, Any]) -> None:
        if cmd == Cmd.FRIEND_REQUEST_EVENT:
            request = body.get("request")
            key = f"r{request.get('id')}" if isinstance(request, dict) else "r"
            self.emit("friend.request", key, body)

    async def on_group_change(self, change: GroupChange) -> None:
        if change.kind in MEMBER_CHANGES:
            self.emit("group.member", f"members{change.group_id}", {
                "group": change.group_id, "change": change.kind, "actor": change.actor, "userid": change.subject,
            })

    def on_role_change(self, group_id: int, member_id: int, role: str, actor: int) -> None:
        self.emit("group.member", f"members{group_id}", {
            "group": group_id, "change": "role", "actor": actor, "userid": member_id, "role": role,
        })

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # gather this loop turn's events
        batch, self._buffer = self._buffer, []
        items = [
            Outgoing(ep.id, event_id, event, okey, pos, body)
            for event_id, event, okey, pos, body in batch
            for ep in self._endpoints
            if event in ep.events
        ]
        try:
            await self._store.enqueue(items)
        except Exception:
            log.exception("webhook events could not be written to the outbox", events=len(batch))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="imhub-webhooks")

    async def stop(self) -> None:
        """Write the queued events, hand the lease back, close the HTTP client."""
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._buffer:
            self._spawn(self._flush())
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._leader:
            try:
                await self._store.release(LEASE, self._node)
            except Exception:
                log.warning("could not release the webhook lease; it runs out by itself")
        if self._http is not None:
            await self._http.close()

    async def refresh(self) -> None:
        self._endpoints = await self._store.endpoints()
        self._subscribed = frozenset(e for ep in self._endpoints for e in ep.events)

    async def _run(self) -> None:
        refreshed = pruned = reconciled = 0.0
        ttl_ms = int(self._settings.webhook_lease_seconds * 1000)
        while True:
            try:
                now = time.monotonic()
                if now - refreshed >= ENDPOINT_REFRESH_SECONDS:
                    await self.refresh()
                    refreshed = now
                if self._endpoints:
                    self._leader = await self._store.acquire(LEASE, self._node, ttl_ms)
                    while self._leader and await self._drain():
                        self._leader = await self._store.acquire(LEASE, self._node, ttl_ms)
                    if self._leader and now - reconciled >= RECONCILE_SECONDS:
                        reconciled = now
                        await self._reconcile()
                    if self._leader and now - pruned >= PRUNE_EVERY_SECONDS:
                        pruned = now
                        await self._store.prune(now_ms() - KEEP_FINISHED_MS)
            except Exception:
                log.exception("webhook outbox round failed; retrying")
            await asyncio.sleep(self._settings.webhook_poll_seconds)

    async def _reconcile(self) -> None:
        """Enqueue message.stored for every settled message after the cursor; those the
        live path enqueued already are skipped (same event id)."""
        wanting = [ep for ep in self._endpoints if {"message.stored", "message.edited"} & set(ep.events)]
        if not wanting:
            return
        while True:
            found = await self._store.messages_after(
                MESSAGE_CURSOR, now_ms() - RECONCILE_SETTLE_MS, RECONCILE_BATCH, min(ep.created for ep in wanting)
            )
            if not found:
                return
            items = [
                Outgoing(ep.id, stored_event_id(m), event, m.conv, m.seq,
                         _body(stored_event_id(m), event, event_data(m)))
                for m in found
                if (event := message_event(m)) is not None
                for ep in wanting
                if m.ts >= ep.created and event in ep.events
            ]
            await self._store.enqueue_and_advance(items, MESSAGE_CURSOR, found[-1].id)
            if len(found) < RECONCILE_BATCH:
                return

    # --- delivering -----------------------------------------------------------------

    async def _drain(self) -> int:
        """One round: every due head delivery, at once. Returns how many were due."""
        now = now_ms()
        due = await self._store.due(now, DUE_BATCH, now - SETTLE_MS)
        if not due:
            return 0
        by_id = {ep.id: ep for ep in self._endpoints}
        if any(d.endpoint_id not in by_id for d in due):
            await self.refresh()  # added by another process since our last look, or removed
            by_id = {ep.id: ep for ep in self._endpoints}
        slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)

        async def one(d: Due) -> None:
            async with slots:
                endpoint = by_id.get(d.endpoint_id)
                error = "endpoint removed" if endpoint is None else await self._post(endpoint, d)
                try:
                    await self._settle(d, error, give_up=endpoint is None)
                except Exception:
                    log.exception("webhook delivery state not saved; it is attempted again", event_id=d.event_id)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    async def _settle(self, d: Due, error: str | None, *, give_up: bool = False) -> None:
        if error is None:
            await self._store.done(d.id)
            return
        s = self._settings
        attempts = d.attempts + 1
        delay = min(s.webhook_retry_max_delay_seconds, s.webhook_retry_base_seconds * 2 ** min(attempts - 1, 30))
        now = now_ms()
        give_up = give_up or now - d.created >= s.webhook_retry_seconds * 1000
        log.info("webhook delivery failed", endpoint=d.endpoint_id, event_id=d.event_id, type=d.event,
                 attempts=attempts, error=error, given_up=give_up)
        await self._store.retry(d.id, now + int(delay * 1000), error, give_up=give_up)

    async def _post(self, endpoint: Endpoint, d: Due) -> str | None:
        """Send one delivery; None if the endpoint took it (2xx), else why not."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        body = d.body.encode()
        headers = signed_headers(endpoint.secret, body, d.event_id, d.event)
        try:
            timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds)
            async with self._http.post(
                endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as r:
                return None if 200 <= r.status < 300 else f"HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return type(exc).__name__


class BeforeSendHook:
    """``IMHUB_WEBHOOK_BEFORE_SEND_URL``: every message sent on a socket is POSTed there
    first (signed like a delivery); the answer ``{"action": "allow"}``,
    ``{"action": "reject", "reason": "..."}`` or ``{"action": "rewrite", "content":
    "..."}`` decides. No answer within the timeout (or an error): sent anyway when
    ``IMHUB_WEBHOOK_BEFORE_SEND_FAIL_OPEN`` (the default), else refused (5031)."""

    def __init__(self, settings: Settings) -> None:
        self._url = check_url(settings.webhook_before_send_url, settings.webhook_allow_http_loopback)
        self._secret = settings.webhook_before_send_secret.get_secret_value()
        self._timeout = settings.webhook_before_send_timeout_seconds
        self._fail_open = settings.webhook_before_send_fail_open
        self._http: aiohttp.ClientSession | None = None

    async def check(self, draft: Draft) -> Draft:
        data = {
            "userid": draft.userid, "cmd": draft.cmd, "dstid": draft.dstid, "conv": draft.conv, "media": draft.media,
            "content": draft.content, "pic": draft.pic, "url": draft.url, "memo": draft.memo, "cid": draft.cid,
        }
        event_id = "evt_" + uuid.uuid4().hex
        body = orjson.dumps({"id": event_id, "type": "message.before_send", "ts": now_ms(), "data": data})
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._ask(body, event_id)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            if self._fail_open:
                log.warning("before-send hook failed; sending anyway", error=type(exc).__name__)
                return draft
            raise Refused(ErrorCode.HOOK_UNAVAILABLE, "the message could not be checked, try again",
                          cid=draft.cid, retry_after=5) from None
        action = answer.get("action", "allow")
        if action == "reject":
            reason = answer.get("reason")
            raise Refused(ErrorCode.REJECTED, reason[:200] if isinstance(reason, str) and reason
                          else "the message was rejected", cid=draft.cid)
        if action == "rewrite":
            content = answer.get("content")
            if isinstance(content, str) and 0 < len(content) <= MAX_CONTENT_CHARS:
                return dataclasses.replace(draft, content=content)
        return draft

    async def _ask(self, body: bytes, event_id: str) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = signed_headers(self._secret, body, event_id, "message.before_send")
        async with self._http.post(self._url, data=body, headers=headers, allow_redirects=False) as r:
            if not 200 <= r.status < 300:
                raise ValueError(f"HTTP {r.status}")
            answer = orjson.loads(await r.read())
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
        return answer

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
