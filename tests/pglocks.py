"""Waiting, in a test, until a PostgreSQL backend is blocked by a given transaction:
a condition to interleave concurrent transactions deterministically (no sleeps)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from imhub.store.db import Database

_BLOCKED_BY = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")


async def until_blocked_by(db: Database, other: AsyncConnection, what: str = "a statement") -> None:
    """Until some backend of ``db`` waits for a lock held by ``other``'s transaction."""
    pid = (await other.execute(text("SELECT pg_backend_pid()"))).scalar()
    for _ in range(1000):
        async with db.async_engine.connect() as conn:
            if (await conn.execute(_BLOCKED_BY, {"pid": pid})).scalar():
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never waited for the other transaction")
