"""The Redis bus: pub/sub between server processes and nodes.

Topics are Redis channels, one per user (``imhub:u:<id>``) and per group
(``imhub:g:<id>``). A process subscribes only to the topics of its local connections
(the gateway node calls :meth:`RedisBus.watch_user` & co. as sockets come and go),
so each bus message reaches each interested process once, and that process fans out to
its own sockets.

Guarantees (see :class:`imhub.bus.base.Bus`):

- **At most once.** A publish during an outage is lost; the message is in the database
  already, and clients are told to sync (``on_resync``) when the subscription comes back.
- **Local first, never waiting.** :meth:`publish` hands the message to this process's
  handlers at once and queues it for Redis in an outbox that one task sends, in order,
  in pipelined batches: neither the caller nor later publishes wait for a slow or hung
  Redis (its own sockets keep working in an outage). While Redis is unreachable the
  outbox keeps up to :data:`OUTBOX_MAX` messages and sends them when it is back; past
  that the oldest are dropped (stored already: their recipients sync after the outage).
  The copy that comes back from Redis is recognised by the bus id and dropped.
- **Once per process.** A message for ``users`` is published to each user's channel
  with ``users`` narrowed to that user (:func:`imhub.bus.wire.narrowed`), so a process
  hosting several of the targets gets one copy per target, never the full list twice.
- **Own reconnect loop.** redis-py's pub/sub does not reconnect by itself; here one task
  owns the subscriber connection: capped exponential backoff with jitter, then every
  watched channel is subscribed again, and once Redis confirms (a PING answered after the
  SUBSCRIBEs), ``on_resync`` runs.
- **A hang is an outage.** The subscriber connection sends a PING every ``keepalive``
  second; when one stays unanswered for ``liveness`` seconds with nothing else heard
  (a SIGSTOPped Redis, a stalled network: TCP stays up, nothing answers) the connection
  is dropped and the reconnect loop takes over, so clients get ``on_resync`` once Redis
  answers again — within ``keepalive + liveness`` (3 s) of the hang instead of never
  (a hang shorter than the old 23 s silence limit sent no resync at all, so what the
  outbox sent after the hang could reach a subscription that had missed earlier ones
  without anyone being told).

- **Leaves and unfriendings reach every process.** Any process may have cached the
  membership or friendship they end (imhub.services.authz), also one holding no socket
  of the users or the group now. So they also go on the ``<prefix>:all`` channel, which
  every process subscribes to on every shard; a leave on the shard of the group's
  channel (after the group's earlier messages), an unfriending on the shard of the first
  user's channel. The copies on the user and group channels are still sent (processes
  of the previous release listen only there), marked so that a process listening on
  ``all`` drops them (:func:`imhub.bus.wire.also_to_all`).

- **Shards.** Given several URLs, the channels are spread over those Redis servers by
  consistent hashing (:mod:`imhub.bus.ring`, on the URL without its password; every
  process must list the same URLs). Each shard has all of the above on its own: its
  publisher and outbox, its subscriber connection, liveness check and reconnect loop.
  A shard that is down or hung delays only its topics; when it is back, ``on_resync``
  names the users and groups this process watches there (:class:`~imhub.bus.base.Missed`),
  and only their clients resync. Order is kept per topic (one topic is on one shard);
  two topics on two shards may arrive either way round, as they may from two
  publishers. With one URL nothing changes: same channels, same wire format, and
  ``on_resync(None)`` (everyone) after an outage.

Wire format: :mod:`imhub.bus.wire` (versioned, with a kind byte per bus message).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from imhub import metrics
from imhub.bus.base import (
    BusMessage,
    Delivery,
    Membership,
    Missed,
    OnControl,
    OnDelivery,
    OnResync,
    Unfriended,
    audience,
)
from imhub.bus.resp import Replies, ReplyError
from imhub.bus.ring import HashRing
from imhub.bus.wire import BUS_ID_LEN, CURRENT_VERSION, also_to_all, decode, encode

log = structlog.get_logger("imhub.bus.redis")
_published = metrics.bus_published.labels("redis")
_received = metrics.bus_received.labels("redis")

# Channels per SUBSCRIBE/UNSUBSCRIBE command: keeps one command well below Redis's
# query buffer limits when a worker re-subscribes ~15k users after an outage.
SUBSCRIBE_CHUNK = 1000
# Bus messages waiting for Redis at most (~a few hundred bytes each), and per pipeline.
OUTBOX_MAX = 100_000
OUTBOX_BATCH = 512
# Bytes the subscriber reads from its socket at a time (every complete reply in them is handled).
READ_SIZE = 1 << 16
_READY = b"imhub-ready"
_PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"  # RESP2: channel, payload
_KEEPALIVE = b"imhub-keepalive"


def user_channel(prefix: str, user_id: int) -> bytes:
    return f"{prefix}:u:{user_id}".encode()


def group_channel(prefix: str, group_id: int) -> bytes:
    return f"{prefix}:g:{group_id}".encode()


def all_channel(prefix: str) -> bytes:
    """Every process listens here, on every shard: leaves and unfriendings."""
    return f"{prefix}:all".encode()


def to_all(message: BusMessage) -> bool:
    """A control every process must get, not only those with the user's sockets: the
    authorization caches (imhub.services.authz) of any process may hold what it ends."""
    return isinstance(message, Unfriended) or (isinstance(message, Membership) and not message.joined)


def _chunks(items: Iterable[bytes], size: int) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the bus -----------------------------------------------------------------------


class RedisBus:
    """See the module docstring. ``url``: one redis:// (or rediss://) URL, or several
    (a list, or comma-separated): the shards the channels are spread over."""

    in_process = False

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        prefix: str = "imhub",
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        keepalive: float = 1.0,
        liveness: float = 2.0,
        timeout: float = 3.0,
        wire_version: int = CURRENT_VERSION,
    ) -> None:
        urls = split_urls(url)
        self.urls = urls
        self.prefix = prefix
        self.bus_id = os.urandom(BUS_ID_LEN)
        self.wire_version = wire_version
        self._timeout = timeout
        self._on_delivery: OnDelivery | None = None
        self._on_control: OnControl | None = None
        self._on_resync: OnResync | None = None
        self._ring = HashRing([safe_url(u) for u in urls])
        self.shards = [
            _Shard(self, u, backoff_base=backoff_base, backoff_cap=backoff_cap, keepalive=keepalive,
                   liveness=liveness, timeout=timeout)
            for u in urls
        ]
        # The one shard when there is one: the hot path then skips the ring.
        self._only: _Shard | None = self.shards[0] if len(self.shards) == 1 else None
        self._started = False
        self._all = all_channel(prefix)

    def shard_of(self, channel: bytes) -> _Shard:
        """The shard that carries ``channel``."""
        return self._only or self.shards[self._ring.index(channel)]

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, on_delivery: OnDelivery, on_control: OnControl, on_resync: OnResync | None = None) -> None:
        """Connect and subscribe; waits up to ``timeout`` for Redis, then carries on in
        the background (local delivery works meanwhile; ``on_resync`` fires when the
        subscription finally comes up). Each shard on its own: one that is down does
        not hold up the others."""
        self._on_delivery = on_delivery
        self._on_control = on_control
        self._on_resync = on_resync
        self._started = True
        for shard in self.shards:
            shard.want_add(self._all)
            shard.start()
        await asyncio.gather(*(shard.wait_ready() for shard in self.shards))

    async def close(self) -> None:
        self._started = False
        # What was published before the close goes out if Redis takes it soon.
        await asyncio.gather(*(shard.close() for shard in self.shards))
        self._on_delivery = None
        self._on_control = None

    @property
    def ready(self) -> bool:
        """True while every shard's subscriber connection is up and its subscriptions confirmed."""
        return all(shard.ready for shard in self.shards)

    @property
    def connects(self) -> int:
        """Successful subscriber connections, over all shards."""
        return sum(shard.connects for shard in self.shards)

    async def ping(self) -> bool:
        """Every shard subscribed and answering a PING on its publisher within a second
        (publishes to some users cannot reach the other processes otherwise)."""
        return all(await asyncio.gather(*(shard.ping() for shard in self.shards)))

    # --- publishing --------------------------------------------------------------------

    async def publish(self, message: BusMessage) -> None:
        """Hand ``message`` to this process's handlers and queue it for Redis (on the
        shard of each channel); returns without waiting for Redis."""
        self._hand_over(message)
        if not self._started:
            return
        _published.inc()
        users, group = audience(message)
        only = self._only
        everyone = to_all(message)
        if isinstance(message, Membership):
            if only is None:
                self._publish_membership(message)
                return
            # One Redis orders it after the group's messages already; the bytes stay
            # as before shards (a time only other processes' late copies would need).
            message = Membership(message.user, message.group, message.joined)
        if group:
            channel = group_channel(self.prefix, group)
            (only or self.shard_of(channel)).enqueue(channel, self._encode(message))
            return
        users = tuple(dict.fromkeys(users))  # keep order, drop repeats
        # An unfriending names both users on purpose: either one's process must
        # learn of both. Everything else is narrowed to the channel's user.
        whole = self._encode(message, everyone) if len(users) == 1 or isinstance(message, Unfriended) else b""
        for uid in users:
            channel = user_channel(self.prefix, uid)
            (only or self.shard_of(channel)).enqueue(channel, whole or self._encode(message, to=uid))
        if everyone:
            # After the user-channel copies, in the same outbox (one shard): a process
            # listening on both drops those and applies this one.
            (only or self.shard_of(user_channel(self.prefix, users[0]))).enqueue(self._all, self._encode(message))

    def _publish_membership(self, m: Membership) -> None:
        """Several shards: the user's and the group's channels may be on different
        ones, so nothing orders a control on one after the messages on the other (one
        Redis did). A leave goes in the group's stream, after the group's messages
        published before it (the leaver's own "removed" event first); every process
        routing the group to the user listens there. A join goes to the user's channel
        (a process not routing the group yet must learn of it) and to the group's, so
        processes already routing the group apply it before the group's next message.
        Copies arriving late are older than what was applied: ``Membership.ts``."""
        channels = [group_channel(self.prefix, m.group)]
        if m.joined:
            channels.insert(0, user_channel(self.prefix, m.user))
        payload = self._encode(m, not m.joined)
        for channel in channels:
            self.shard_of(channel).enqueue(channel, payload)
        if not m.joined:
            # Every process, on the group's shard: after the group's earlier messages.
            self.shard_of(channels[-1]).enqueue(self._all, self._encode(m))

    def _encode(self, message: BusMessage, also_to_all: bool = False, to: int | None = None) -> bytes:
        return encode(message, self.bus_id, self.wire_version, also_to_all=also_to_all, to=to)

    def _hand_over(self, message: BusMessage) -> None:
        """Give ``message`` to this process's handlers."""
        if isinstance(message, Delivery):
            if self._on_delivery is not None:
                self._on_delivery(message)
        elif self._on_control is not None:
            self._on_control(message)

    # --- interest ----------------------------------------------------------------------

    def watch_user(self, user_id: int) -> None:
        channel = user_channel(self.prefix, user_id)
        self.shard_of(channel).want_add(channel)

    def unwatch_user(self, user_id: int) -> None:
        channel = user_channel(self.prefix, user_id)
        self.shard_of(channel).want_discard(channel)

    def watch_group(self, group_id: int) -> None:
        channel = group_channel(self.prefix, group_id)
        self.shard_of(channel).want_add(channel)

    def unwatch_group(self, group_id: int) -> None:
        channel = group_channel(self.prefix, group_id)
        self.shard_of(channel).want_discard(channel)

    # --- from the shards ---------------------------------------------------------------

    def _on_message(self, data: bytes, channel: bytes = b"") -> None:
        if channel != self._all and also_to_all(data):
            return  # the copy on the all channel brings it
        try:
            bus_id, message = decode(data)
        except (ValueError, struct.error, UnicodeDecodeError):
            log.warning("malformed bus message dropped", size=len(data))
            return
        if bus_id == self.bus_id:
            return  # our own echo: handed over locally at publish time
        _received.inc()
        if isinstance(message, Delivery) and message.ts:
            metrics.bus_lag_seconds.observe(max(0.0, time.time() - message.ts / 1000))
        try:
            self._hand_over(message)
        except Exception:
            log.exception("handling a bus message failed")

    def _resync(self, shard: _Shard) -> None:
        """``shard`` is back after an outage: what it carried meanwhile is lost. With
        one shard that is everything; with several, only its users' and groups' topics."""
        if self._on_resync is None:
            return
        missed = None if self._only else self._missed_on(shard)
        try:
            self._on_resync(missed)
        except Exception:
            log.exception("on_resync failed")

    def _missed_on(self, shard: _Shard) -> Missed:
        users: set[int] = set()
        groups: set[int] = set()
        u, g = user_channel(self.prefix, 0)[:-1], group_channel(self.prefix, 0)[:-1]
        for channel in shard.subscribed:
            if channel.startswith(u):
                users.add(int(channel[len(u):]))
            elif channel.startswith(g):
                groups.add(int(channel[len(g):]))
        return Missed(frozenset(users), frozenset(groups))


class _Shard:
    """One Redis server of the bus: its own publisher and outbox, subscriber connection,
    liveness check and reconnect loop (see the module docstring)."""

    def __init__(
        self, bus: RedisBus, url: str, *, backoff_base: float, backoff_cap: float, keepalive: float,
        liveness: float, timeout: float,
    ) -> None:
        self.bus = bus
        self.url = url
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._keepalive = keepalive
        self._liveness = liveness
        self._timeout = timeout
        self.want: set[bytes] = set()  # channels local connections need
        self.subscribed: set[bytes] = set()  # channels asked of the current connection
        # Channels whose wanting changed since the last sync: a sync looks at these
        # only, not at every wanted channel (a worker wants ~17k at 100k online).
        self._changed: set[bytes] = set()
        self._dirty = asyncio.Event()
        self._ready = asyncio.Event()  # the current connection's subscriptions are live
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._publisher: Redis | None = None
        self._sub_pool: ConnectionPool | None = None
        self._pub_pool: ConnectionPool | None = None
        self._pub_conn: AbstractConnection | None = None  # the outbox's connection, while it works
        self._outbox: deque[tuple[bytes, bytes]] = deque()  # (channel, payload), in publish order
        self._outbox_wakeup = asyncio.Event()
        self._outbox_sent = asyncio.Event()  # set while nothing waits to be sent
        self._outbox_sent.set()
        self._sender: asyncio.Task[None] | None = None
        self._sender_stopped = False
        self.connects = 0  # successful subscriber connections (1 + outages survived)
        self._up = metrics.bus_shard_up.labels(safe_url(url))
        self._up.set(0)
        # Set when clients may have missed something: any lost connection, or no
        # connection by the end of start() (clients connect while we retry).
        self._missed = False
        # Loop time of the oldest PING on the subscriber connection not answered yet.
        self._ping_at: float | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        # For /readyz's PING only (publishes go through the outbox's own connection
        # below). One retry: a pooled connection may have died with a Redis restart.
        self._publisher = Redis.from_url(
            self.url,
            socket_connect_timeout=self._timeout,
            socket_timeout=self._timeout,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        # RESP2 on the subscriber: messages are plain replies (RESP3 turns them into
        # push frames handled elsewhere). No retries: this class owns reconnection.
        self._sub_pool = ConnectionPool.from_url(
            self.url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout, retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        # The outbox's own connection: PUBLISH commands written as one buffer, their
        # replies read in bulk (imhub.bus.resp), not through redis-py's pipeline.
        self._pub_pool = ConnectionPool.from_url(
            self.url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout, retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        self._task = asyncio.create_task(self._run(), name="imhub-redis-bus")
        self._sender = asyncio.create_task(self._send_forever(), name="imhub-redis-bus-outbox")

    async def wait_ready(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self._timeout)
        if not self._ready.is_set():
            self._missed = True
            log.error("redis bus not reachable at start; retrying in the background", url=safe_url(self.url))

    async def close(self) -> None:
        self._closing = True
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_sent.wait(), self._timeout)
            # A flag as well as the cancel: redis-py can absorb a cancel that lands
            # inside a pipeline, and the loop would then wait for more forever.
            self._sender_stopped = True
            self._outbox_wakeup.set()
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
        if self._sub_pool is not None:
            await self._sub_pool.disconnect()
            self._sub_pool = None
        await self._drop_pub_conn()
        if self._pub_pool is not None:
            await self._pub_pool.disconnect()
            self._pub_pool = None

    @property
    def ready(self) -> bool:
        """True while the subscriber connection is up and its subscriptions confirmed."""
        return self._ready.is_set()

    async def ping(self) -> bool:
        """Subscribed, and Redis answers a PING on the publisher within a second."""
        publisher = self._publisher
        if publisher is None or not self.ready:
            return False
        try:
            return bool(await asyncio.wait_for(publisher.ping(), 1.0))
        except (TimeoutError, RedisError, OSError):
            return False

    # --- publishing --------------------------------------------------------------------

    def enqueue(self, channel: bytes, payload: bytes) -> None:
        out = self._outbox
        out.append((channel, payload))
        if len(out) > OUTBOX_MAX:
            out.popleft()
            metrics.bus_outbox_dropped.inc()
        self._outbox_sent.clear()
        self._outbox_wakeup.set()

    async def _send_forever(self) -> None:
        """The outbox's only sender: batches in publish order; on a failure the batch
        goes back to the front and is retried with backoff, so order is kept."""
        failures = 0
        out = self._outbox
        while not self._sender_stopped:
            if not out:
                self._outbox_sent.set()
                self._outbox_wakeup.clear()
                await self._outbox_wakeup.wait()
                continue
            if self._pub_pool is None:
                return
            batch = [out.popleft() for _ in range(min(len(out), OUTBOX_BATCH))]
            try:
                await self._publish_batch(batch)
            except (RedisError, OSError, TimeoutError, ValueError) as exc:
                out.extendleft(reversed(batch))
                failures += 1
                if failures == 1:
                    metrics.bus_publish_failures.inc()
                    log.warning("redis bus publish failing; queueing until it answers", error=repr(exc),
                                queued=len(out), url=safe_url(self.url))
                delay = min(self._backoff_cap, self._backoff_base * 2 ** min(failures, 16))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                continue
            if failures:
                log.warning("redis bus publishing again", failed_attempts=failures, queued=len(out),
                            url=safe_url(self.url))
                failures = 0

    async def _publish_batch(self, batch: list[tuple[bytes, bytes]]) -> None:
        """PUBLISH every ``(channel, payload)`` of ``batch``, in order, in one write;
        returns once Redis has answered them all. A kept connection that fails is
        replaced and the batch sent once more at once (it may have died with a Redis
        restart), as redis-py's one retry did; any other failure raises."""
        packed = b"".join([_PUBLISH % (len(channel), channel, len(payload), payload) for channel, payload in batch])
        for attempt in (0, 1):
            conn = self._pub_conn
            kept = conn is not None
            if conn is None:
                assert self._pub_pool is not None
                conn = self._pub_pool.make_connection()  # type: ignore[no-untyped-call]
                self._pub_conn = conn
            try:
                if not kept:
                    await conn.connect()
                await self._exchange(conn, packed, len(batch))
                return
            except (RedisError, OSError, TimeoutError, ValueError) as exc:
                await self._drop_pub_conn()
                if not kept or attempt or isinstance(exc, ResponseError):
                    raise

    async def _exchange(self, conn: AbstractConnection, packed: bytes, n: int) -> None:
        """Write ``packed`` (``n`` commands) and read their ``n`` replies, within ``timeout``."""
        reader, writer = conn._reader, conn._writer
        if reader is None or writer is None:
            raise ConnectionError("publisher connection not open")
        replies = Replies()
        error: ReplyError | None = None
        async with asyncio.timeout(self._timeout):
            writer.write(packed)
            await writer.drain()
            while n > 0:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise ConnectionError("redis closed the publisher connection")
                for reply in replies.feed(data):
                    n -= 1
                    if error is None and isinstance(reply, ReplyError):
                        error = reply
        if error is not None:
            raise ResponseError(str(error))

    async def _drop_pub_conn(self) -> None:
        conn, self._pub_conn = self._pub_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    # --- interest ----------------------------------------------------------------------

    def want_add(self, channel: bytes) -> None:
        if channel not in self.want:
            self.want.add(channel)
            self._changed.add(channel)
            self._dirty.set()

    def want_discard(self, channel: bytes) -> None:
        if channel in self.want:
            self.want.discard(channel)
            self._changed.add(channel)
            self._dirty.set()

    # --- the subscriber connection -------------------------------------------------------

    async def _run(self) -> None:
        """Connect, subscribe, read; on any failure back off and start over."""
        failures = 0
        while not self._closing:
            assert self._sub_pool is not None
            conn: AbstractConnection = self._sub_pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                failures = 0
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ValueError) as exc:
                if self._closing:
                    break
                lost = self._ready.is_set()
                self._ready.clear()
                self._missed = self._missed or lost
                failures += 1
                level = log.warning if lost or failures == 1 else log.debug
                level("redis bus connection lost" if lost else "redis bus unreachable", error=repr(exc),
                      url=safe_url(self.url))
            finally:
                self._ready.clear()
                self._up.set(0)
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            if self._closing:
                break
            delay = min(self._backoff_cap, self._backoff_base * 2 ** min(failures, 16))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _session(self, conn: AbstractConnection) -> None:
        self.subscribed = set()
        # The PING below is the first liveness probe: a Redis that accepts the TCP
        # connection but never answers (stopped) is left after ``liveness`` seconds.
        self._ping_at = asyncio.get_running_loop().time()
        await self._sync_subscriptions(conn, everything=True)
        # Redis answers in order: the PING's reply means every SUBSCRIBE above is live.
        await conn.send_command("PING", _READY, check_health=False)
        over = asyncio.Event()
        writer = asyncio.create_task(self._writer(conn, over), name="imhub-redis-bus-writer")
        try:
            await self._reader(conn, writer)
        finally:
            # ``over`` stops the writer should it swallow the cancel: redis-py runs each
            # write in asyncio.wait_for, which on Python 3.11 drops a cancel arriving as
            # the write completes (gh-86296); the session then waited for it forever.
            over.set()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await writer

    async def _sync_subscriptions(self, conn: AbstractConnection, *, everything: bool = False) -> None:
        """Bring the connection's subscriptions in line with what is wanted: on a new
        connection (``everything``) all of it; after that only the channels changed
        since the last sync, so a sync costs what changed, not what is watched (the
        full comparison copied and diffed ~17k channels per worker on every loop turn
        with a connect in it)."""
        self._dirty.clear()
        if everything:
            self._changed = set()
            want = set(self.want)
            add = want - self.subscribed
            drop = self.subscribed - want
            self.subscribed = want
        else:
            changed, self._changed = self._changed, set()
            want, subscribed = self.want, self.subscribed
            add = {c for c in changed if c in want and c not in subscribed}
            drop = {c for c in changed if c not in want and c in subscribed}
            subscribed |= add
            subscribed -= drop
        for batch in _chunks(sorted(add), SUBSCRIBE_CHUNK):
            await conn.send_command("SUBSCRIBE", *batch, check_health=False)
        for batch in _chunks(sorted(drop), SUBSCRIBE_CHUNK):
            await conn.send_command("UNSUBSCRIBE", *batch, check_health=False)

    async def _writer(self, conn: AbstractConnection, over: asyncio.Event) -> None:
        """The only task writing on the subscriber connection after the handshake:
        subscription changes as they come, and a keepalive PING every ``keepalive``
        seconds (busy or not: the reader judges liveness by its answer)."""
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self._keepalive
        while not over.is_set():
            wait = next_ping - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), wait)
            if self._dirty.is_set():
                await self._sync_subscriptions(conn)
            if loop.time() >= next_ping:
                if self._ping_at is None:
                    self._ping_at = loop.time()
                await conn.send_command("PING", _KEEPALIVE, check_health=False)
                next_ping = loop.time() + self._keepalive

    async def _reader(self, conn: AbstractConnection, writer: asyncio.Task[None]) -> None:
        """Read replies; raise :class:`_NoReply` when a PING has waited ``liveness``
        seconds with nothing at all heard meanwhile (a backlog of messages ahead of the
        PONG still counts as alive)."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        tick = min(self._keepalive, self._liveness) / 2
        # Everything up to here was written, nothing read since the handshake: the
        # stream holds only this session's replies. Read what has arrived in one go
        # and cut the replies out of it (imhub.bus.resp), not reply by reply.
        stream = conn._reader
        if stream is None:
            raise ConnectionError("subscriber connection not open")
        replies = Replies()
        on_reply = self._on_reply
        while True:
            if writer.done():
                writer.result()  # re-raise the writer's connection error
                raise ConnectionError("subscriber writer stopped")
            data: bytes | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    data = await stream.read(READ_SIZE)
            now = loop.time()
            if data is None:
                asked = self._ping_at
                if asked is not None and now - max(asked, last_heard) > self._liveness:
                    raise _NoReply(f"redis bus: no reply to PING in {now - asked:.1f} s")
                continue
            if not data:
                raise ConnectionError("redis closed the subscriber connection")
            last_heard = now
            for reply in replies.feed(data):
                if isinstance(reply, ReplyError):
                    raise ResponseError(str(reply))
                on_reply(reply)

    def _on_reply(self, reply: Any) -> None:
        if isinstance(reply, list) and reply:
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                self.bus._on_message(reply[2], reply[1])
            elif kind == b"pong" and len(reply) >= 2:
                self._ping_at = None
                if reply[1] == _READY:
                    self._became_ready()
        elif reply in (_READY, _KEEPALIVE):
            # PING outside subscribed mode (nothing watched yet) echoes its argument.
            self._ping_at = None
            if reply == _READY:
                self._became_ready()

    def _became_ready(self) -> None:
        if self._ready.is_set():
            return
        self._ready.set()
        self._up.set(1)
        self.connects += 1
        if not self._missed:
            log.info("redis bus subscribed", url=safe_url(self.url), channels=len(self.subscribed))
            return
        self._missed = False
        log.warning("redis bus reconnected; clients will resync", channels=len(self.subscribed),
                    url=safe_url(self.url))
        self.bus._resync(self)


def split_urls(url: str | Sequence[str]) -> list[str]:
    """``"redis://a,redis://b"`` (or a list) as the list of shard URLs."""
    urls = [u.strip() for u in url.split(",")] if isinstance(url, str) else [u.strip() for u in url]
    if not urls or not all(urls):
        raise ValueError(f"no Redis URL in {url!r}")
    return urls


class _NoReply(TimeoutError):
    """Redis left a PING on the subscriber connection unanswered for ``liveness`` s."""


def safe_url(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url


__all__ = ["RedisBus", "all_channel", "group_channel", "safe_url", "split_urls", "user_channel"]
