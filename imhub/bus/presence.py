"""Who is online: infrastructure beside the bus, following ``IMHUB_BUS``. This
process's connections report opening and closing; the answer
for one user is "has at least one open connection anywhere".

- :class:`LocalPresence`: connection counts in this process (one process, local bus).
- :class:`RedisPresence`: the same counts locally, plus in Redis, per user, the set of
  nodes (processes) holding one of the user's connections. A claim counts only while
  its node is alive: every node keeps its own entry in one sorted set of nodes, scored
  with the time it expires, and refreshes it every ``ttl / 3`` seconds. That refresh is
  one command per node, whatever its number of users (refreshing a claim per user cost
  ~0.45 s of CPU per 10 s for 14k users, per worker, at 100k online). A node that dies
  without cleaning up stops refreshing; ``ttl`` later its claims stop counting, and the
  next live node to notice removes them (once, under a short Redis lock). Only a user's
  first connection on a node and its last one touch Redis.

Redis trouble never fails a connection: answers fall back to what this process knows,
and the next refresh repairs Redis.
"""


from __future__ import annotations

from typing import Protocol


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
