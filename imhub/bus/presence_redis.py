"""Presence shared through Redis: see :mod:`imhub.bus.presence` for the model."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from imhub.bus.presence import _Counts

log = structlog.get_logger("imhub.presence")


class RedisPresence:
    """Presence shared by every process and node through Redis (see the module docstring).

    Keys (under ``prefix``): ``:nodes`` sorted set node → expiry (ms); ``:p:<user>`` set
    of the nodes holding the user's connections; ``:n:<node>`` set of the users a node
    claims (what the cleanup of a dead node walks); ``:gc:<node>`` the cleanup's lock.
    """

    GC_LOCK_MS = 60_000

    def __init__(self, url: str, node_id: str, *, ttl: float = 30.0, prefix: str = "imhub", timeout: float = 2.0):
        self.url = url
        self.node_id = node_id
        self.ttl = ttl
        self.prefix = prefix
        self._timeout = timeout
        self._counts = _Counts()
        self._redis: Redis | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closing = False
        self._nodes = f"{prefix}:nodes"
        self._mine = self._node_key(node_id)

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}:p:{user_id}"

    def _node_key(self, node_id: str) -> str:
        return f"{self.prefix}:n:{node_id}"

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(self.url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout)
        return self._redis

    async def start(self) -> None:
        # Alive before the first claim, so other nodes count this node's users at once.
        try:
            await self.refresh()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable at start; will retry", error=repr(exc))
        self._refresher = asyncio.create_task(self._refresh_forever(), name="imhub-presence-refresh")

    async def close(self) -> None:
        self._closing = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        # A clean stop withdraws this node's claims at once (a crash leaves them to expire).
        users = list(self._counts.connections)
        self._counts.connections.clear()
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                for uid in users:
                    pipe.srem(self._key(uid), self.node_id)
                pipe.delete(self._mine)
                pipe.zrem(self._nodes, self.node_id)
                await pipe.execute()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- connections -------------------------------------------------------------------

    async def connected(self, user_id: int) -> bool:
        if not self._counts.up(user_id):
            return False  # already had a connection here: online before, claim held
        return await self._claim(user_id, holding=True)

    async def disconnected(self, user_id: int) -> bool:
        if not self._counts.down(user_id):
            return False
        return await self._claim(user_id, holding=False)

    async def _claim(self, user_id: int, *, holding: bool) -> bool:
        """Add (or withdraw) this node's claim on ``user_id``; True if no other live
        node holds one, i.e. the user just came online (or went offline) everywhere."""
        key = self._key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                if holding:
                    pipe.sadd(key, self.node_id)
                    pipe.sadd(self._mine, user_id)
                else:
                    pipe.srem(key, self.node_id)
                    pipe.srem(self._mine, user_id)
                pipe.smembers(key)
                pipe.zrangebyscore(self._nodes, f"({_now_ms()}", "+inf")
                _, _, holders, live = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return True
        return not self._alive(holders, live, besides_me=True)

    def _alive(self, holders: set[bytes], live: list[bytes], *, besides_me: bool = False) -> bool:
        """Whether any of a user's claiming nodes is alive."""
        alive = holders.intersection(live)
        if besides_me:
            alive.discard(self.node_id.encode())
        return bool(alive)

    # --- questions ---------------------------------------------------------------------

    async def is_online(self, user_id: int) -> bool:
        return user_id in await self.online_among([user_id])

    async def online_among(self, user_ids: list[int]) -> set[int]:
        local = {u for u in user_ids if u in self._counts.connections}
        rest = [u for u in user_ids if u not in local]
        if not rest:
            return local
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(self._nodes, f"({_now_ms()}", "+inf")
                for uid in rest:
                    pipe.smembers(self._key(uid))
                live, *holders = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return local
        return local | {u for u, h in zip(rest, holders, strict=True) if self._alive(h, live)}

    # --- keeping this node alive, cleaning up after dead ones ---------------------------

    async def refresh(self) -> None:
        """Extend this node's life; remove the claims of nodes that have expired."""
        now = _now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._nodes, {self.node_id: now + int(self.ttl * 1000)})
            pipe.zrangebyscore(self._nodes, "-inf", now)
            added, dead = await pipe.execute()
        if added and self._counts.connections:
            # We were gone from Redis (buried after a long stall, or Redis lost its
            # data) while holding connections: claim them all again.
            await self._claim_all()
        for node in dead:
            await self._bury(node.decode())

    async def _claim_all(self) -> None:
        users = list(self._counts.connections)
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.sadd(self._key(uid), self.node_id)
            pipe.sadd(self._mine, *users)
            await pipe.execute()
        log.warning("presence: this node's claims were gone from redis; claimed again", users=len(users))

    async def _bury(self, node: str) -> None:
        """Withdraw a dead node's claims (one live node does it, under a lock)."""
        if not await self.redis.set(f"{self.prefix}:gc:{node}", self.node_id, nx=True, px=self.GC_LOCK_MS):
            return
        users = await self.redis.smembers(self._node_key(node))
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.srem(self._key(int(uid)), node)
            pipe.delete(self._node_key(node))
            pipe.zrem(self._nodes, node)
            await pipe.execute()
        log.info("presence: withdrew a dead node's claims", node=node, users=len(users))

    async def _refresh_forever(self) -> None:
        # The flag, not only the cancel, ends the loop: redis-py (8.1) can absorb a
        # cancel that lands inside a pipeline, and refresh() then returns normally
        # (seen as a close() that waited forever, about one test run in ten).
        while not self._closing:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("presence refresh failed; will retry", error=repr(exc))


def _now_ms() -> int:
    return int(time.time() * 1000)
