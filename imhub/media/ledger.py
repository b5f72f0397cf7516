"""The record of stored uploads (table ``media_objects``): who holds how many bytes
(storage quotas) and which anonymous uploads are still unclaimed (swept after a day).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from imhub.store.db import Database
from imhub.store.tables import media_objects as mo


@dataclass(frozen=True, slots=True)
class Unclaimed:
    name: str
    thumb: str | None


class MediaLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, name: str, thumb: str | None, owner: int | None, size: int, now_ms: int) -> None:
        stmt = insert(mo).values(name=name, thumb=thumb, owner_id=owner, size=size, created=now_ms)
        await self._db.execute(stmt)

    async def usage(self, owner: int) -> int:
        rows = await self._db.fetch(select(func.coalesce(func.sum(mo.c.size), 0)).where(mo.c.owner_id == owner))
        return int(rows[0][0])

    async def claim(self, name: str, owner: int) -> bool:
        """Give an unclaimed upload to ``owner`` (a registration that uses it, or its
        thumbnail, as avatar)."""
        named = or_(mo.c.name == name, mo.c.thumb == name)
        stmt = update(mo).where(and_(named, mo.c.owner_id.is_(None))).values(owner_id=owner)
        return await self._db.execute(stmt) > 0

    async def take_unclaimed(self, created_before_ms: int, limit: int = 500) -> list[Unclaimed]:
        """Remove and return unclaimed uploads older than the cut-off (the caller then
        deletes their files; a file without a row is harmless, the reverse is not)."""

        def run(conn: Connection) -> list[Unclaimed]:
            rows = conn.execute(
                select(mo.c.name, mo.c.thumb)
                .where(and_(mo.c.owner_id.is_(None), mo.c.created < created_before_ms))
                .limit(limit)
            ).all()
            if rows:
                conn.execute(delete(mo).where(mo.c.name.in_([r[0] for r in rows])))
            return [Unclaimed(r[0], r[1]) for r in rows]

        return await self._db.write(run)
