"""Web Push: a push to the browsers of a recipient who has no open connection.

Keys: one VAPID key pair per deployment, created at first start in the data directory
(``IMHUB_PUSH_VAPID_KEY_FILE``; every node must share it, since a browser's
subscription is bound to the public key). The private key is only ever read from that
file and handed to pywebpush; it is never logged nor sent anywhere.

Payload: as little as possible — ``{"conv": "p3_7", "count": 2}`` (the recipient's
unread count there). The SPA's service worker fetches the text itself with the user's
session, or shows "New message" (frontend/public/sw.js). Encrypted (RFC 8291,
aes128gcm) to the browser's keys and signed with VAPID (RFC 8292) by pywebpush.

Flow: after a commit, :meth:`PushService.on_stored` queues the new messages (never
blocking the sender); a worker task finds each message's recipients who are offline
(presence, shared over Redis with several workers or nodes), skips those who muted
the conversation (``/message/convsettings``), and pushes to their subscriptions. Only the
process that committed a message pushes it, so it is pushed once. A subscription the
push service answers 404 or 410 for is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import structlog
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from imhub import metrics
from imhub.bus.presence import Presence
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import CLIENT_MEDIA, Cmd, Message
from imhub.domain.urls import split_url
from imhub.errors import ErrorCode, Refused
from imhub.store.messages import MessageStore
from imhub.store.push import PushStore, Subscription

log = structlog.get_logger("imhub.push")

MAX_SUBSCRIPTIONS_PER_USER = 10
QUEUE_MAX = 10_000
SEND_TIMEOUT_SECONDS = 10.0
SENDS_AT_ONCE = 16


def _public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_global
    except ValueError:
        return False


def check_push_endpoint(url: str, allow_local: bool) -> str:
    """A push subscription's endpoint: the server POSTs to it, so any user could point
    it at an internal service (SSRF). https to a public host only; ``allow_local`` (the
    ``push_allow_http`` setting, for tests with a local receiver) also takes http and
    private or loopback hosts. Names are checked again when connecting
    (:class:`PublicOnlyResolver`): a public-looking name may resolve to 10.0.0.1."""
    parts = split_url(url)
    host = parts.hostname or ""
    schemes = ("https", "http") if allow_local else ("https",)
    if len(url) > 1024 or parts.scheme not in schemes or not host:
        raise Refused(ErrorCode.BAD_PARAM, "endpoint: an https URL of a push service is required")
    if not allow_local:
        try:
            ipaddress.ip_address(host)
            literal = True
        except ValueError:
            literal = False
        if (literal and not _public(host)) or host == "localhost" or host.endswith(".localhost"):
            raise Refused(ErrorCode.BAD_PARAM, "endpoint: the push service must be on a public address")
    return url


class PublicOnlyResolver(aiohttp.ThreadedResolver):
    """Resolves names to public addresses only (an endpoint's name resolving to a
    private, loopback or link-local address is never connected to)."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        found = [r for r in await super().resolve(host, port, family) if _public(r["host"])]
        if not found:
            raise OSError(f"{host} is not a public address: no push is sent there")
        return found

def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def load_or_create_vapid_key(path: Path) -> Vapid02:
    """The deployment's VAPID key; created (mode 0600) if the file does not exist yet.
    Several workers starting at once: each writes its own temporary file and links it
    into place, so exactly one key wins and every worker reads that one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = Vapid02()
        fresh.generate_keys()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(fresh.private_pem())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return Vapid02.from_file(str(path))


def public_key_of(vapid: Vapid02) -> str:
    """The public key as the Push API's ``applicationServerKey`` (base64url, raw point)."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class PushService:
    def __init__(self, settings: Settings, store: PushStore, messages: MessageStore, presence: Presence) -> None:
        self._settings = settings
        self._store = store
        self._messages = messages
        self._presence = presence
        self._vapid: Vapid02 | None = None
        self.public_key = ""
        self._queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_MAX)
        self._session: aiohttp.ClientSession | None = None
        self._worker: asyncio.Task[None] | None = None
        self._sending = asyncio.Semaphore(SENDS_AT_ONCE)

    @property
    def enabled(self) -> bool:
        return self._settings.push_enabled

    async def start(self) -> None:
        if not self.enabled:
            return
        self._vapid = await asyncio.to_thread(load_or_create_vapid_key, self._settings.effective_vapid_key_file)
        self.public_key = public_key_of(self._vapid)
        connector = None if self._settings.push_allow_http else aiohttp.TCPConnector(resolver=PublicOnlyResolver())
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS), connector=connector
        )
        self._worker = asyncio.create_task(self._run(), name="push-worker")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # --- subscriptions -------------------------------------------------------------

    async def subscribe(self, user_id: int, endpoint: str, p256dh: str, auth: str) -> None:
        if not self.enabled:
            raise Refused(ErrorCode.REFUSED, "Web Push is turned off on this server")
        check_push_endpoint(endpoint, self._settings.push_allow_http)
        try:
            key, secret = _b64url_decode(p256dh), _b64url_decode(auth)
        except (binascii.Error, ValueError):
            raise Refused(ErrorCode.BAD_PARAM, "p256dh and auth must be base64url") from None
        if len(key) != 65 or key[0] != 4 or len(secret) != 16:
            raise Refused(ErrorCode.BAD_PARAM, "p256dh must be a P-256 public key and auth 16 bytes")
        await self._store.subscribe(Subscription(user_id, endpoint, p256dh, auth), now_ms(), MAX_SUBSCRIPTIONS_PER_USER)

    async def unsubscribe(self, user_id: int, endpoint: str) -> bool:
        return await self._store.unsubscribe(user_id, endpoint)

    # --- pushing -------------------------------------------------------------------

    def on_stored(self, m: Message) -> None:
        """Messaging's listener, once per stored message: queue the chat messages of
        1:1 and group conversations (not group events, edits, reactions, pins, nor the
        user's own stream)."""
        if self._worker is None or m.media not in CLIENT_MEDIA or m.conv[0] not in "pg":
            return
        try:
            self._queue.put_nowait(m)
        except asyncio.QueueFull:
            metrics.push_dropped.inc()

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self.push_for(message)
            except Exception:
                log.exception("push failed", conv=message.conv, seq=message.seq)

    async def push_for(self, m: Message) -> int:
        """Push ``m`` to its offline recipients' browsers; returns how many pushes went out."""
        if m.cmd == Cmd.GROUP:
            # The members' subscriptions first (usually few), then who of them is online:
            # never every member of a large group (a 10k group cost ~55 µs per member).
            subs = await self._store.of_group_members(m.dstid, but=m.userid)
            if subs:
                online = await self._presence.online_among(sorted({s.user_id for s in subs}))
                subs = [s for s in subs if s.user_id not in online]
        else:
            # 1:1: the recipient is usually online, which presence answers without a query.
            if m.dstid == m.userid:
                return 0
            if await self._presence.online_among([m.dstid]):
                metrics.push_skipped_online.inc()
                return 0
            subs = await self._store.of_users([m.dstid])
        if subs:
            muted = await self._store.muted_among(m.conv, {s.user_id for s in subs})
            subs = [s for s in subs if s.user_id not in muted]
        if not subs:
            return 0
        cursors = await self._messages.cursors_in(m.conv)
        sends = []
        for sub in subs:
            read = cursors.get(sub.user_id, (0, 0))[1]
            payload = {"conv": m.conv, "count": max(1, m.seq - read)}
            sends.append(self._send(sub, orjson.dumps(payload).decode()))
        results = await asyncio.gather(*sends)
        return sum(results)

    async def _send(self, sub: Subscription, data: str) -> bool:
        assert self._vapid is not None and self._session is not None
        claims: dict[str, str | int] = {"sub": self._settings.effective_push_subject}
        async with self._sending:
            try:
                response = await webpush_async(
                    sub.info(),
                    data,
                    vapid_private_key=self._vapid,
                    vapid_claims=claims,
                    ttl=self._settings.push_ttl_seconds,
                    timeout=SEND_TIMEOUT_SECONDS,
                    aiohttp_session=self._session,
                )
            except WebPushException as exc:
                status = exc.status_code or 0
                if status in (404, 410):
                    await self._store.remove(sub.endpoint)
                    metrics.push_sent.labels(outcome="gone").inc()
                    log.info("push subscription expired; removed", user=sub.user_id, status=status)
                else:
                    metrics.push_sent.labels(outcome="failed").inc()
                    log.warning("push refused by the push service", user=sub.user_id, status=status)
                return False
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                metrics.push_sent.labels(outcome="failed").inc()
                log.warning("push service unreachable", user=sub.user_id, error=type(exc).__name__)
                return False
        if isinstance(response, aiohttp.ClientResponse):
            response.release()
        metrics.push_sent.labels(outcome="sent").inc()
        return True
