"""Engine creation: URLs, connection settings per dialect, and the dialect's upsert.

Stores are written once in SQLAlchemy Core. Where the dialects differ beyond this
module it is on purpose and measured: the plain-sqlite3 fast paths (db.py's writer and
reader threads, append_ops.SqliteAppendOps) and full-text search (search.py: FTS5 on
SQLite, tsvector on PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across process
    # crashes (only a power cut can lose the last commits); busy_timeout lets several
    # worker processes share the file; SQLite leaves foreign keys off by default.
    # busy_timeout first: switching a new file to WAL takes a lock that another
    # connection opening at the same moment must wait for, not fail on.
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url`` with our SQLite pragmas or PostgreSQL pool."""
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, poolclass=NullPool if db_path == ":memory:" else None)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    # No pool_pre_ping: it cost every checkout BEGIN, ';' and ROLLBACK, three round trips
    # each waiting for a turn of a busy worker's loop with the connection idle in
    # transaction (perf7-loss.md). A connection the server dropped fails the one
    # operation that finds it (retryable: the gateway answers 5030, the sequencer and
    # the batch writer retry) and SQLAlchemy then replaces every older connection.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)


def dialect_insert(engine: AsyncEngine) -> Any:
    """The dialect's ``insert`` construct, which has ``on_conflict_do_update``/``nothing``
    on both SQLite and PostgreSQL (plain ``sqlalchemy.insert`` has neither)."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert
