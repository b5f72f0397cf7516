"""Presence shared through Redis: see :mod:`imhub.bus.presence` for the model.

With several Redis shards (``IMHUB_REDIS_URL`` a list), a user's presence lives on the
shard that carries the user's bus topic (:mod:`imhub.bus.ring`), and each shard is a
complete presence store of its own for its users: its own sorted set of live nodes,
its own per-node claim sets, refreshed and cleaned up shard by shard. A shard that is
down only makes its users' presence fall back to what each process knows; one that
comes back empty (restarted) is refilled by the next refresh.

Claims are written in batches: the connects and disconnects of one loop turn (and
those that come while a batch is in flight) go to Redis as one ``MULTI`` per shard,
one round trip and one live-node read for the lot. One batch at a time per shard, so
a node's claims reach Redis in the order its connections came and went. At a reconnect
storm this is what keeps Redis off the handshake's path: one pipelined transaction per
shard per loop turn instead of one per connect (~40 % of a worker's handshake time
with 6 workers on 2 cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from imhub.bus.presence import _Counts
from imhub.bus.redis import safe_url, split_urls, user_channel
from imhub.bus.ring import HashRing

log = structlog.get_logger("imhub.presence")

# Claims per script call at most (a reconnect storm queues thousands per worker).
CLAIM_BATCH = 1000

# A batch of claims: KEYS = the live-node set, this node's claim set; ARGV = the user
# key prefix, this node, now (ms), then (user, 1 claim / 0 withdraw) pairs. Returns one
# character per claim: "1" if no other live node holds the user after it.
CLAIMS_LUA = """
local prefix, me, now = ARGV[1], ARGV[2], ARGV[3]
local live = {}
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do live[n] = true end
local out, final = {}, {}
for i = 4, #ARGV, 2 do
  local uid, key = ARGV[i], prefix .. ARGV[i]
  if ARGV[i + 1] == '1' then redis.call('SADD', key, me) else redis.call('SREM', key, me) end
  local alone = '1'
  for _, n in ipairs(redis.call('SMEMBERS', key)) do
    if n ~= me and live[n] then alone = '0' break end
  end
  out[#out + 1] = alone
  final[uid] = ARGV[i + 1]
end
local held, dropped = {}, {}
for uid, h in pairs(final) do
  if h == '1' then held[#held + 1] = uid else dropped[#dropped + 1] = uid end
end
for i = 1, #held, 500 do redis.call('SADD', KEYS[2], unpack(held, i, math.min(i + 499, #held))) end
for i = 1, #dropped, 500 do redis.call('SREM', KEYS[2], unpack(dropped, i, math.min(i + 499, #dropped))) end
return table.concat(out)
"""


class RedisPresence:
    """Presence shared by every process and node through Redis (see the module docstring).

    Keys (under ``prefix``, on each shard): ``:nodes`` sorted set node → expiry (ms);
    ``:p:<user>`` set of the nodes holding the user's connections; ``:n:<node>`` set of
    the users (of this shard) a node claims (what the cleanup of a dead node walks);
    ``:gc:<node>`` the cleanup's lock.
    """

    GC_LOCK_MS = 60_000

    def __init__(
        self, url: str | Sequence[str], node_id: str, *, ttl: float = 30.0, prefix: str = "imhub",
        timeout: float = 2.0,
    ) -> None:
        self.urls = split_urls(url)
        self.node_id = node_id
        self.ttl = ttl
        self.prefix = prefix
        self._timeout = timeout
        self._ring = HashRing([safe_url(u) for u in self.urls])
        self._counts = _Counts()
        self._clients: list[Redis | None] = [None] * len(self.urls)
        # Per shard: claims waiting for the next batch ((user, holding, answer)), and
        # the task writing batches while there are any.
        self._queued: list[list[tuple[int, bool, asyncio.Future[bool]]]] = [[] for _ in self.urls]
        self._writers: list[asyncio.Task[None] | None] = [None] * len(self.urls)
        self._refresher: asyncio.Task[None] | None = None
        self._closing = False
        self._nodes = f"{prefix}:nodes"
        self._mine = self._node_key(node_id)
        # Per shard: the claims script (EVALSHA; loaded again after a Redis restart).
        self._scripts: list[AsyncScript | None] = [None] * len(self.urls)

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}:p:{user_id}"

    def _node_key(self, node_id: str) -> str:
        return f"{self.prefix}:n:{node_id}"

    def shard_of(self, user_id: int) -> int:
        """The shard holding ``user_id``'s presence: the one that carries its bus topic."""
        return self._ring.index(user_channel(self.prefix, user_id)) if len(self.urls) > 1 else 0

    def client(self, shard: int) -> Redis:
        made = self._clients[shard]
        if made is None:
            made = Redis.from_url(self.urls[shard], socket_connect_timeout=self._timeout,
                                  socket_timeout=self._timeout)
            self._clients[shard] = made
        return made

    def client_for(self, user_id: int) -> Redis:
        return self.client(self.shard_of(user_id))

    @property
    def redis(self) -> Redis:
        """The first shard's client (the only one with a single Redis)."""
        return self.client(0)

    def _by_shard(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for uid in user_ids:
            out.setdefault(self.shard_of(uid), []).append(uid)
        return out

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
        writers = [w for w in self._writers if w is not None]
        if writers:  # claims in flight go first, so the withdrawal below is the last word
            await asyncio.gather(*writers, return_exceptions=True)
        # A clean stop withdraws this node's claims at once (a crash leaves them to expire).
        by_shard = self._by_shard(list(self._counts.connections))
        self._counts.connections.clear()

        async def withdraw(shard: int) -> None:
            with contextlib.suppress(RedisError, OSError):
                async with self.client(shard).pipeline(transaction=False) as pipe:
                    for uid in by_shard.get(shard, ()):
                        pipe.srem(self._key(uid), self.node_id)
                    pipe.delete(self._mine)
                    pipe.zrem(self._nodes, self.node_id)
                    await pipe.execute()

        await asyncio.gather(*(withdraw(i) for i in range(len(self.urls))))
        for i, made in enumerate(self._clients):
            if made is not None:
                await made.aclose()
                self._clients[i] = None
                self._scripts[i] = None

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
        node holds one, i.e. the user just came online (or went offline) everywhere.
        Queued for the shard's next batch (see the module docstring)."""
        shard = self.shard_of(user_id)
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued[shard].append((user_id, holding, answer))
        if self._writers[shard] is None:
            self._writers[shard] = asyncio.create_task(self._write_claims(shard), name="imhub-presence-claims")
        return await answer

    async def _write_claims(self, shard: int) -> None:
        """Write the shard's queued claims, a batch at a time, until none are left."""
        try:
            queued = self._queued[shard]
            while queued:
                batch = queued[:CLAIM_BATCH]
                del queued[:CLAIM_BATCH]
                try:
                    answers = await self._claim_batch(shard, [(uid, holding) for uid, holding, _ in batch])
                except (RedisError, OSError) as exc:
                    log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
                    answers = [True] * len(batch)
                for (_, _, answer), alone in zip(batch, answers, strict=True):
                    if not answer.done():
                        answer.set_result(alone)
        finally:
            self._writers[shard] = None
            for _, _, answer in self._queued[shard] if self._closing else ():
                if not answer.done():
                    answer.set_result(True)

    async def _claim_batch(self, shard: int, claims: list[tuple[int, bool]]) -> list[bool]:
        """One script call (atomic, like a transaction): each claim added or withdrawn
        in order, and for each whether another live node holds the user. So of two
        nodes claiming one user at once exactly one finds itself first (and announces
        it). Redis does the per-claim work; this process packs one command and parses
        one reply per batch (a MULTI of two commands per claim cost ~13 % of a
        worker's CPU in a reconnect storm, most of it redis-py packing and parsing)."""
        args: list[str | int] = [f"{self.prefix}:p:", self.node_id, _now_ms()]
        for uid, holding in claims:
            args.append(uid)
            args.append(1 if holding else 0)
        script = self._scripts[shard]
        if script is None:
            script = self._scripts[shard] = self.client(shard).register_script(CLAIMS_LUA)
        reply = await script(keys=[self._nodes, self._mine], args=args)
        return [c == 0x31 for c in reply]  # b"1": no other live node holds the user

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
        found = await asyncio.gather(*(self._online_on(shard, users)
                                       for shard, users in self._by_shard(rest).items()))
        return local.union(*found)

    async def _online_on(self, shard: int, user_ids: list[int]) -> set[int]:
        try:
            async with self.client(shard).pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(self._nodes, f"({_now_ms()}", "+inf")
                for uid in user_ids:
                    pipe.smembers(self._key(uid))
                live, *holders = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence: redis unavailable; answering from this process", error=repr(exc))
            return set()
        return {u for u, h in zip(user_ids, holders, strict=True) if self._alive(h, live)}

    async def everyone_online(self) -> set[int]:
        """Every user a live node holds a connection of, on every shard (for admins:
        walks all presence keys)."""
        found = {u for u in self._counts.connections}
        for shard in range(len(self.urls)):
            r = self.client(shard)
            live: list[bytes] = await r.zrangebyscore(self._nodes, f"({_now_ms()}", "+inf")  # type: ignore[assignment]
            keys: list[bytes] = [k async for k in r.scan_iter(match=f"{self.prefix}:p:*", count=1000)]
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                async with r.pipeline(transaction=False) as pipe:
                    for k in chunk:
                        pipe.smembers(k)
                    holders = await pipe.execute()
                for k, h in zip(chunk, holders, strict=True):
                    tail = k.rsplit(b":", 1)[-1]
                    if tail.isdigit() and self._alive(h, live):
                        found.add(int(tail))
        return found

    # --- keeping this node alive, cleaning up after dead ones ---------------------------

    async def refresh(self) -> None:
        """Extend this node's life on every shard; remove the claims of nodes that have
        expired. A shard that fails does not stop the others (the first error is raised
        after all were tried)."""
        results = await asyncio.gather(*(self._refresh_shard(i) for i in range(len(self.urls))),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _refresh_shard(self, shard: int) -> None:
        now = _now_ms()
        r = self.client(shard)
        async with r.pipeline(transaction=False) as pipe:
            pipe.zadd(self._nodes, {self.node_id: now + int(self.ttl * 1000)})
            pipe.zrangebyscore(self._nodes, "-inf", now)
            added, dead = await pipe.execute()
        if added and self._counts.connections:
            # We were gone from this shard (buried after a long stall, or Redis lost its
            # data) while holding connections: claim its users again.
            await self._claim_all(shard)
        for node in dead:
            await self._bury(shard, node.decode())

    async def _claim_all(self, shard: int) -> None:
        users = self._by_shard(list(self._counts.connections)).get(shard, [])
        if not users:
            return
        async with self.client(shard).pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.sadd(self._key(uid), self.node_id)
            pipe.sadd(self._mine, *users)
            await pipe.execute()
        log.warning("presence: this node's claims were gone from redis; claimed again", users=len(users),
                    url=safe_url(self.urls[shard]))

    async def _bury(self, shard: int, node: str) -> None:
        """Withdraw a dead node's claims on ``shard`` (one live node does it, under a lock)."""
        r = self.client(shard)
        if not await r.set(f"{self.prefix}:gc:{node}", self.node_id, nx=True, px=self.GC_LOCK_MS):
            return
        users = await r.smembers(self._node_key(node))
        async with r.pipeline(transaction=False) as pipe:
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
