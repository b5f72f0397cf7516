"""SQLite WAL checkpoints run on their own thread, not inside a commit
(imhub/store/checkpoint.py): the writer's connections have automatic checkpoints off,
and committed pages still reach the database file within a few seconds."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from sqlalchemy import Connection, text

from imhub.store.db import Database


async def test_writes_reach_the_database_file_without_checkpointing_in_the_commit(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        def setup(conn: Connection) -> int:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)"))
            return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())

        assert await db.write(setup) == 0  # the writer never checkpoints in a commit

        def insert(conn: Connection) -> None:
            conn.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": os.urandom(1000)} for _ in range(3000)])

        await db.write(insert)
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 3_000_000  # committed: in the WAL
        before = path.stat().st_size
        for _ in range(50):  # the checkpointer runs every second
            if path.stat().st_size > before + 3_000_000:
                break
            await asyncio.sleep(0.1)
        assert path.stat().st_size > before + 3_000_000  # copied into the database file

        def count(conn: Connection) -> int:
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

        assert await db.read(count) == 3000
    finally:
        await db.dispose()
