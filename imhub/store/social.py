"""Friends (contacts) and groups (communities, members)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine


class SocialStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
