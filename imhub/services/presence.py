"""Who is online. This process's hub reports connections opening and closing; the
answer for one user is "has at least one open connection anywhere". The local
implementation only knows this process; the scale-out issue adds a Redis one."""

from __future__ import annotations

from typing import Protocol


class Presence(Protocol):
    def is_online(self, user_id: int) -> bool: ...

    def online_among(self, user_ids: list[int]) -> set[int]: ...


class LocalPresence:
    """Connection counts per user, for a single process."""

    def __init__(self) -> None:
        self._connections: dict[int, int] = {}

    def connected(self, user_id: int) -> bool:
        """Count one more connection; True if the user just came online."""
        n = self._connections.get(user_id, 0) + 1
        self._connections[user_id] = n
        return n == 1

    def disconnected(self, user_id: int) -> bool:
        """Count one connection fewer; True if the user just went offline."""
        n = self._connections.get(user_id, 0) - 1
        if n <= 0:
            self._connections.pop(user_id, None)
            return True
        self._connections[user_id] = n
        return False

    def is_online(self, user_id: int) -> bool:
        return user_id in self._connections

    def online_among(self, user_ids: list[int]) -> set[int]:
        return {u for u in user_ids if u in self._connections}
