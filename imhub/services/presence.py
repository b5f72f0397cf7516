"""Who is online. This process's connections report opening and closing; the answer
for one user is "has at least one open connection anywhere".

- :class:`LocalPresence`: connection counts in this process (one process, local bus).
- :class:`RedisPresence`: the same counts locally, plus per user a Redis sorted set of
  the nodes (processes) holding one of the user's connections, each scored with the
  time its claim expires. A node refreshes the claims of its users every
  ``ttl / 3`` seconds; a node that dies without cleaning up simply stops refreshing,
  and its claims stop counting after ``ttl`` (they are pruned on the next write and
  the key itself expires). Only a user's first connection on a node and its last one
  touch Redis; the refresh is one pipeline per period.

Redis trouble never fails a connection: answers fall back to what this process knows,
and the next refresh repairs Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("imhub.presence")


class Presence(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def connected(self, user_id: int) -> bool:
        """One more connection of ``user_id`` here; True if the user just came online
        (had no connection anywhere)."""

    async def disconnected(self, user_id: int) -> bool:
        """One connection fewer here; True if the user just went offline everywhere."""

    async def is_online(self, user_id: int) -> bool: ...

    async def online_among(self, user_ids: list[int]) -> set[int]: ...


class _Counts:
    """Connections per user in this process."""

    def __init__(self) -> None:
        self.connections: dict[int, int] = {}

    def up(self, user_id: int) -> bool:
        n = self.connections.get(user_id, 0) + 1
        self.connections[user_id] = n
        return n == 1

    def down(self, user_id: int) -> bool:
        n = self.connections.get(user_id, 0) - 1
        if n <= 0:
            self.connections.pop(user_id, None)
            return True
        self.connections[user_id] = n
        return False


class LocalPresence:
    """Connection counts per user, for a single process."""

    def __init__(self) -> None:
        self._counts = _Counts()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def connected(self, user_id: int) -> bool:
        return self._counts.up(user_id)

    async def disconnected(self, user_id: int) -> bool:
        return self._counts.down(user_id)

    async def is_online(self, user_id: int) -> bool:
        return user_id in self._counts.connections

    async def online_among(self, user_ids: list[int]) -> set[int]:
        return {u for u in user_ids if u in self._counts.connections}


class RedisPresence:
    """Presence shared by every process and node through Redis (see the module docstring)."""

    def __init__(self, url: str, node_id: str, *, ttl: float = 30.0, prefix: str = "imhub", timeout: float = 2.0):
        self.url = url
        self.node_id = node_id
        self.ttl = ttl
        self.prefix = prefix
        self._timeout = timeout
        self._counts = _Counts()
        self._redis: Redis | None = None
        self._refresher: asyncio.Task[None] | None = None

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}:p:{user_id}"

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(self.url, socket_connect_timeout=self._timeout, socket_timeout=self._timeout)
        return self._redis

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(), name="imhub-presence-refresh")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        # A clean stop withdraws this node's claims at once (a crash leaves them to expire).
        users = list(self._counts.connections)
        self._counts.connections.clear()
        if users:
            with contextlib.suppress(RedisError, OSError):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for uid in users:
                        pipe.zrem(self._key(uid), self.node_id)
                    await pipe.execute()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # --- connections -------------------------------------------------------------------

    async def connected(self, user_id: int) -> bool:
        if not self._counts.up(user_id):
            return False  # already had a connection here: online before, claim held
        now = _now_ms()
        key = self._key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zcard(key)
                pipe.zadd(key, {self.node_id: now + int(self.ttl * 1000)})
                pipe.pexpire(key, int(self.ttl * 1000))
                _, others, _, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return True
        return int(others) == 0

    async def disconnected(self, user_id: int) -> bool:
        if not self._counts.down(user_id):
            return False
        key = self._key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(key, self.node_id)
                pipe.zremrangebyscore(key, "-inf", _now_ms())
                pipe.zcard(key)
                _, _, left = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return True
        return int(left) == 0

    # --- questions ---------------------------------------------------------------------

    async def is_online(self, user_id: int) -> bool:
        return user_id in await self.online_among([user_id])

    async def online_among(self, user_ids: list[int]) -> set[int]:
        local = {u for u in user_ids if u in self._counts.connections}
        rest = [u for u in user_ids if u not in local]
        if not rest:
            return local
        now = _now_ms()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for uid in rest:
                    pipe.zcount(self._key(uid), f"({now}", "+inf")
                counts = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return local
        return local | {u for u, n in zip(rest, counts, strict=True) if int(n) > 0}

    # --- keeping claims alive ----------------------------------------------------------

    async def refresh(self) -> None:
        """Extend this node's claim for every user connected here."""
        users = list(self._counts.connections)
        if not users:
            return
        until = _now_ms() + int(self.ttl * 1000)
        ttl_ms = int(self.ttl * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in users:
                key = self._key(uid)
                pipe.zadd(key, {self.node_id: until})
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("presence refresh failed; will retry", error=repr(exc))


def _now_ms() -> int:
    return int(time.time() * 1000)
