"""Database.read_rows, run against SQLite (plain sqlite3 on a reader thread, statements
compiled once) and PostgreSQL (the async engine): the same rows either way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select

from imhub.services.batch import retryable
from imhub.store.db import Database, Rows
from imhub.store.tables import contacts
from imhub.store.users import UserStore
from tests.conftest import _pg_admin

# Two bind parameters, listed in the opposite order of their use in the SQL: the SQLite
# path binds them by the compiled statement's order, not the dict's.
_BETWEEN = (
    select(contacts.c.owner_id, contacts.c.dst_id)
    .where(contacts.c.owner_id == bindparam("owner"), contacts.c.dst_id > bindparam("above"))
    .order_by(contacts.c.dst_id)
)


def _two_queries(rows: Rows, owner: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return rows(_BETWEEN, {"above": 2, "owner": owner}), rows(_BETWEEN, {"above": 0, "owner": owner + 1})


async def test_read_rows_binds_by_name_and_returns_tuples(db_url: str) -> None:
    db = Database(db_url)
    try:
        ids = [(await UserStore(db).create(mobile=f"1380000000{i}", passwd_hash="h")).id for i in range(1, 5)]
        assert ids == [1, 2, 3, 4]
        links = [(1, 2), (1, 3), (1, 4), (2, 1)]
        await db.execute(insert(contacts), [{"owner_id": a, "dst_id": b, "created": 0} for a, b in links])
        first, second = await db.read_rows(_two_queries, 1)
        assert first == [(1, 3), (1, 4)]
        assert second == [(2, 1)]
        assert all(type(r) is tuple for r in first + second)
        # again: the SQLite path reuses its compiled statement and its thread's connection
        assert await db.read_rows(_two_queries, 1) == (first, second)
        assert await db.read_rows(_two_queries, 7) == ([], [])
    finally:
        await db.dispose()


# A setting made for the rest of the transaction (set_config's is_local): the second
# statement still sees it only if both ran in one transaction block.
_SET_LOCAL = select(func.set_config("imhub.probe", "held", True))
_PROBE = select(func.coalesce(func.current_setting("imhub.probe", True), ""))


def _one_transaction(conn: Any) -> bool:
    conn.execute(_SET_LOCAL)
    return bool(conn.execute(_PROBE).scalar() == "held")


def _rows_one_transaction(rows: Rows) -> bool:
    rows(_SET_LOCAL, {})
    return bool(rows(_PROBE, {})[0][0] == "held")


async def test_postgres_reads_open_no_transaction_block(postgres_url: str) -> None:
    """A read is one round trip per statement: no BEGIN first and no ROLLBACK after,
    so its connection never sits "idle in transaction" while the worker's loop is busy
    with other work (perf7-loss.md: 25 of them, and the read pool starved). Under READ
    COMMITTED each statement took its own snapshot anyway."""
    db = Database(postgres_url)
    try:
        assert await db.read(_one_transaction) is False
        assert await db.read_rows(_rows_one_transaction) is False
        assert await db.write(_one_transaction) is True  # writes keep their transactions
        assert await db.read(_one_transaction) is False  # the pooled connection again
    finally:
        await db.dispose()


async def test_postgres_reads_are_not_pinged_first_and_a_lost_connection_fails_once(
    postgres_url: str, monkeypatch: Any
) -> None:
    """pool_pre_ping cost every checkout BEGIN, ';' and ROLLBACK (three more loop turns
    with the connection idle in transaction). Without it a connection the server lost
    fails the one read that found it, as a retryable error (the gateway answers 5030,
    the sequencer retries), and SQLAlchemy then replaces the pool's connections."""
    db = Database(postgres_url)
    pings: list[object] = []
    ping = db.async_engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(db.async_engine.dialect, "do_ping", counted_ping)
    try:
        pid = await db.read(lambda conn: conn.execute(select(func.pg_backend_pid())).scalar())
        assert await db.read(_one_transaction) is False
        assert pings == []
        await _pg_admin(f"select pg_terminate_backend({int(pid)})")
        try:
            await db.read(_one_transaction)
        except Exception as exc:
            assert retryable(exc)
        assert await db.read(_one_transaction) is False
    finally:
        await db.dispose()
