"""Running store transactions (Synapse's "runInteraction"): a store method hands a
plain synchronous function of a SQLAlchemy :class:`~sqlalchemy.Connection` to
:meth:`Database.read` or :meth:`Database.write`, which runs it as one transaction.

Why not SQLAlchemy's async API statement by statement: with aiosqlite every DBAPI call
is a round trip to aiosqlite's thread and back, about 1.2 ms of CPU per statement on
our machines (measured: a one-row SELECT through ``AsyncConnection`` 1,216 µs; the same
query as a sync function on one thread hop 221 µs). So:

- SQLite: the function runs on a dedicated thread with a sync pysqlite connection —
  one thread hop per transaction. Writes go to a single writer thread (SQLite has one
  writer anyway) and start with ``BEGIN IMMEDIATE`` so a transaction never has to
  upgrade its lock (which can fail with "database is locked" across processes); reads
  use a small pool of reader threads (WAL lets them run beside the writer).
- PostgreSQL: the same function runs on the asyncpg engine through
  :meth:`AsyncConnection.run_sync` (greenlets, no threads).

The hottest write, the message append, goes one step further on SQLite
(:meth:`Database.write_raw`): its function gets a plain ``sqlite3`` cursor of a
connection the writer thread keeps for itself, with no pool checkout, engine events or
SQLAlchemy transaction around it (measured: ~230 µs of CPU per transaction less, which
is most of a small batch's cost). The hottest read, the token check of every WebSocket handshake and
HTTP request, does the same on the reader threads (:meth:`Database.read_rows`: a
handshake's reads went from ~270 µs of CPU to 50–90 µs).

On PostgreSQL the message append has its own path too (:meth:`Database.write_pg`): a
connection of the writer's own, opened with asyncpg directly, whose statements each
commit on their own. SQLAlchemy's asyncpg adapter spends three round trips on the
pool's pre-ping (BEGIN, ``;``, ROLLBACK) and two more on BEGIN and COMMIT around every
transaction, and compiles, binds and wraps each statement in Python; the append is one
statement over arrays (append_ops.PgAppendOps), so it needs none of that.

``async_engine`` stays available for migrations, health checks and bulk tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, ParamSpec, TypeVar

import asyncpg
from sqlalchemy import Connection, Engine, Executable, Row, Select, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only, greenlet_spawn

from imhub.store.checkpoint import Checkpointer, no_auto_checkpoint
from imhub.store.engine import _sqlite_on_connect, create_engine, is_sqlite

P = ParamSpec("P")
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

SQLITE_READERS = 2


class Database:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.async_engine: AsyncEngine = create_engine(url, pool_size)
        self.is_sqlite = is_sqlite(url)
        # Reads (PostgreSQL): the same pool, but no transaction block around them. Under
        # READ COMMITTED each statement takes its own snapshot anyway, so BEGIN and the
        # ROLLBACK at check-in bought nothing but two round trips, each waiting for a
        # turn of this worker's busy loop while the connection sat "idle in transaction"
        # (perf7-loss.md: the read pool starved and requests timed out at 30 s).
        self._read_engine: AsyncEngine = (
            self.async_engine if self.is_sqlite else self.async_engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.dialect = self.async_engine.dialect.name
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._sync_write: Engine | None = None
        self._sync_read: Engine | None = None
        self._raw_path: str | None = None
        self._raw: sqlite3.Connection | None = None  # only ever used on the writer thread
        self._raw_reader = threading.local()  # .conn: each reader thread's own connection
        self._raw_readers: list[sqlite3.Connection] = []
        self._checkpointer: Checkpointer | None = None  # WAL checkpoints off the commit path
        self._pg: asyncpg.Connection | None = None  # write_pg's own connection (PostgreSQL)
        self._pg_lock = asyncio.Lock()
        if self.is_sqlite:
            sync_url = make_url(url).set(drivername="sqlite+pysqlite")
            self._raw_path = sync_url.database or ":memory:"
            on_disk = self._raw_path != ":memory:"
            self._sync_write = _sqlite_engine(sync_url, immediate=True, pool_size=1, auto_checkpoint=not on_disk)
            self._sync_read = _sqlite_engine(sync_url, immediate=False, pool_size=SQLITE_READERS)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="imhub-sqlite-writer")
            self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="imhub-sqlite-reader")
            if on_disk:
                self._checkpointer = Checkpointer(self._raw_path)
                self._checkpointer.start()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` and return its result: in a read transaction on
        SQLite, one statement at a time (autocommit, no transaction block) on PostgreSQL."""
        if self._sync_read is not None and self._readers is not None:
            return await _on_thread(self._readers, _in_transaction, self._sync_read, fn, args)
        async with self._read_engine.connect() as conn:
            return await conn.run_sync(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a transaction that commits if it returns and
        rolls back if it raises."""
        if self._sync_write is not None and self._writer is not None:
            return await _on_thread(self._writer, _in_transaction, self._sync_write, fn, args)
        async with self.async_engine.begin() as conn:
            return await conn.run_sync(fn, *args)

    async def write_raw(self, fn: Callable[..., T], *args: Any) -> T:
        """SQLite only: run ``fn(cursor, *args)`` on the writer thread with a plain
        ``sqlite3`` cursor, between ``BEGIN IMMEDIATE`` and ``COMMIT`` (``ROLLBACK`` if it
        raises). The cursor's connection belongs to the writer thread, so these
        transactions are serialised with every other write of this process."""
        if self._writer is None:
            raise RuntimeError("write_raw is for SQLite")
        return await _on_thread(self._writer, self._raw_transaction, fn, args)

    async def write_pg(self, fn: Callable[..., T], *args: Any) -> T:
        """PostgreSQL only: run ``fn(pg, *args)``, where ``pg`` is a :class:`PgStatements`
        on a connection kept for these calls (opened on first use and again after it was
        lost), one call at a time. There is no transaction around ``fn``: each statement
        commits on its own (with the server's ``synchronous_commit``: when it returns it
        is durable), so whatever must be atomic goes in one statement. Errors come as
        SQLAlchemy's (``IntegrityError``, ``OperationalError``, ``DBAPIError`` with the
        asyncpg error, and its ``sqlstate``, as ``orig``), like the other paths'."""
        if self.dialect != "postgresql":
            raise RuntimeError("write_pg is for PostgreSQL")
        async with self._pg_lock:
            conn = self._pg
            if conn is None or conn.is_closed():
                conn = self._pg = await self._connect_pg()
            try:
                return await greenlet_spawn(fn, PgStatements(conn), *args)
            except BaseException as exc:
                if not isinstance(exc, (sa_exc.IntegrityError, sa_exc.DBAPIError)) or isinstance(
                    exc, (sa_exc.OperationalError, sa_exc.InterfaceError)
                ):
                    # Lost, cancelled mid-statement, or a bug: start afresh next time.
                    self._pg = None
                    conn.terminate()
                raise

    async def _connect_pg(self) -> asyncpg.Connection:
        _, params = self.async_engine.dialect.create_connect_args(self.async_engine.url)
        for sa_only in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn"):
            params.pop(sa_only, None)
        try:
            return await asyncpg.connect(**params)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise sa_exc.OperationalError("connect", None, exc, connection_invalidated=True) from exc

    async def read_rows(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(rows, *args)`` in one read transaction, where ``rows(stmt, params)``
        returns a Core statement's rows as tuples. On SQLite the statements run, each
        compiled once, on a plain ``sqlite3`` cursor of the reader thread's own
        connection (no pool checkout, no SQLAlchemy result or transaction objects),
        between ``BEGIN`` and ``ROLLBACK``, so every statement sees one snapshot.
        Elsewhere they run on the async engine, each statement on its own (PostgreSQL:
        autocommit, as with READ COMMITTED every statement has its own snapshot)."""
        if self._readers is not None:
            return await _on_thread(self._readers, self._raw_read, fn, args)
        async with self._read_engine.connect() as conn:
            return await conn.run_sync(_core_rows_transaction, fn, args)

    def _raw_read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        raw = getattr(self._raw_reader, "conn", None)
        if raw is None:
            raw = self._raw_reader.conn = self._connect_raw()
            self._raw_readers.append(raw)
        cur = raw.cursor()
        try:
            cur.execute("BEGIN")
            return fn(functools.partial(_sqlite_rows, cur), *args)
        finally:
            raw.rollback()  # nothing to keep; ends the snapshot
            cur.close()

    def _connect_raw(self) -> sqlite3.Connection:
        assert self._raw_path is not None
        # isolation_level None: we say when transactions begin and end.
        raw = sqlite3.connect(self._raw_path, isolation_level=None, check_same_thread=False)
        _sqlite_on_connect(raw, None)
        return raw

    def _raw_transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        raw = self._raw
        if raw is None:
            raw = self._connect_raw()
            if self._checkpointer is not None:
                no_auto_checkpoint(raw)
            self._raw = raw
        cur = raw.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            result = fn(cur, *args)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.close()
        return result

    def _close_raw(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    async def fetch(self, stmt: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """All rows of one query (its own read transaction). Hot queries are built once
        with ``bindparam``s and run with ``params``: building a ``select()`` per call
        costs more CPU than SQLite spends answering it."""
        return await self.read(_fetch_all, stmt, params)

    async def execute(self, stmt: Executable, params: Any = None) -> int:
        """One write statement in its own transaction; returns the rowcount."""
        return await self.write(_execute, stmt, params)

    async def dispose(self) -> None:
        if self._pg is not None:
            async with self._pg_lock:
                if self._pg is not None:
                    with contextlib.suppress(Exception):
                        await self._pg.close(timeout=5)
                    self._pg = None
        if self._writer is not None and self._raw is not None:
            with contextlib.suppress(Exception):
                await _on_thread(self._writer, self._close_raw)
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        for raw in self._raw_readers:  # their threads have stopped
            raw.close()
        self._raw_readers.clear()
        for engine in (self._sync_write, self._sync_read):
            if engine is not None:
                engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        await self.async_engine.dispose()


class PgStatements:
    """Statements on :meth:`Database.write_pg`'s connection, for a synchronous function
    run in a greenlet (each call waits for its statement, as a DBAPI cursor would). The
    SQL is PostgreSQL's own (``$1``, ``$2``, … parameters); asyncpg prepares each text
    once per connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await_only(self._conn.fetch(sql, *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise sa_exc.IntegrityError(sql, None, exc) from exc
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as exc:
            # InternalClientError: a message the server sent before closing (a terminated
            # backend) met the next statement.
            raise sa_exc.OperationalError(sql, None, exc, connection_invalidated=True) from exc
        except asyncpg.PostgresError as exc:
            raise sa_exc.DBAPIError(sql, None, exc) from exc


def _fetch_all(conn: Connection, stmt: Executable, params: dict[str, Any] | None) -> list[Row[Any]]:
    return list(conn.execute(stmt, params) if params else conn.execute(stmt))


class ReadBatcher(Generic[K, V]):
    """One read for many callers: the keys asked for while a read is in flight (or in
    the same loop turn) are read together in the next one, ``read(keys)`` returning
    one answer per key, up to ``batch`` keys a call. With one caller at a time nothing
    waits longer than before; when many come at once (a reconnect storm: every
    handshake's token read, every disconnect's friends read) the reader-thread hop
    (queue, thread wake-up, GIL hand-over) is paid once per batch, not per key. A
    batch starts after every key in it was asked for, so it sees every write
    committed before the ask."""

    def __init__(
        self, read: Callable[[list[K]], Awaitable[list[V]]], batch: int = 256, name: str = "imhub-reads"
    ) -> None:
        self._read = read
        self._batch = batch
        self._name = name
        self._queued: list[tuple[K, asyncio.Future[V]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queued.append((key, answer))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_queued(), name=self._name)
        return await answer

    async def _read_queued(self) -> None:
        queued = self._queued
        try:
            while queued:
                batch = queued[: self._batch]
                del queued[: self._batch]
                try:
                    found = await self._read([key for key, _ in batch])
                except BaseException as exc:
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, answer), value in zip(batch, found, strict=True):
                    if not answer.done():
                        answer.set_result(value)
        finally:
            self._reader = None


def _execute(conn: Connection, stmt: Executable, params: Any) -> int:
    result = conn.execute(stmt, params) if params is not None else conn.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


Rows = Callable[[Select[Any], dict[str, Any]], list[tuple[Any, ...]]]
_SQLITE_DIALECT = sqlite_dialect()
# id(statement) -> (statement, SQL, bind names in order); the statements are module
# constants (kept alive here too, so an id is never reused).
_SQLITE_COMPILED: dict[int, tuple[Select[Any], str, tuple[str, ...]]] = {}


def _sqlite_rows(cur: sqlite3.Cursor, stmt: Select[Any], params: dict[str, Any]) -> list[tuple[Any, ...]]:
    entry = _SQLITE_COMPILED.get(id(stmt))
    if entry is None:
        compiled = stmt.compile(dialect=_SQLITE_DIALECT)
        entry = _SQLITE_COMPILED[id(stmt)] = (stmt, str(compiled), tuple(compiled.positiontup or ()))
    _, sql, names = entry
    return cur.execute(sql, tuple(params[n] for n in names)).fetchall()


def _core_rows_transaction(conn: Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    def rows(stmt: Select[Any], params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(stmt, params)]

    return fn(rows, *args)


def _in_transaction(engine: Engine, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    with engine.begin() as conn:
        return fn(conn, *args)


async def _on_thread(pool: ThreadPoolExecutor, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))


def _sqlite_engine(url: Any, *, immediate: bool, pool_size: int, auto_checkpoint: bool = True) -> Engine:
    engine = create_sync_engine(url, pool_size=pool_size, max_overflow=0, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, record: Any) -> None:
        _sqlite_on_connect(dbapi_conn, record)
        if not auto_checkpoint:
            no_auto_checkpoint(dbapi_conn)
        # Let SQLAlchemy (not pysqlite) decide when transactions begin.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
