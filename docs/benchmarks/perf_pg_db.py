"""(docs/benchmarks/perf-pg.md) The scratch database perf-pg-stages.py and
perf-pg-explain.py measure in: a fresh PostgreSQL database on 127.0.0.1, migrated,
with 1,000 users in 500 pairs; dropped afterwards. Import it after putting the
measured checkout first on ``sys.path`` (its ``imhub`` migrates the database)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from imhub.store.migrate import migrate


@dataclass
class Scratch:
    name: str  # the database's name
    url: str  # its SQLAlchemy URL, for imhub's own Database
    conn: asyncpg.Connection  # a plain connection to it
    pairs: list[tuple[int, int]]  # 500 pairs of user ids, each user in one pair


@asynccontextmanager
async def scratch_database(prefix: str, pid: int) -> AsyncIterator[Scratch]:
    name = f"{prefix}_{pid}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        await migrate(url)
        c = await asyncpg.connect(host="127.0.0.1", user="postgres", database=name)
        await c.execute(
            "INSERT INTO users (mobile, passwd, createat) SELECT 'm'||g, 'x', 0 FROM generate_series(1,1000) g"
        )
        ids = [r[0] for r in await c.fetch("SELECT id FROM users ORDER BY id")]
        yield Scratch(name, url, c, [(ids[2 * i], ids[2 * i + 1]) for i in range(500)])
        await c.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
