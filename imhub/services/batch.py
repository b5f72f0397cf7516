"""Group commit (the seed's "合并写数据库"): drafts submitted while a transaction is in
flight are written together in the next one. One writer task per process.

A draft is queued with a *sink* that learns its outcome only after the commit:

- an :class:`asyncio.Future` (:meth:`BatchWriter.enqueue`, :meth:`BatchWriter.submit`),
  resolved to ``(message, duplicate)`` or to the exception;
- any other object (:meth:`BatchWriter.enqueue_to`): handed, with its draft and outcome,
  to the ``on_commit`` callback, once per batch and in queue order. This is the chat
  path: one callback per commit instead of one awaiting task per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError

from imhub import metrics
from imhub.domain.model import Draft, Message
from imhub.errors import ErrorCode, Refused
from imhub.store.messages import MessageStore

log = structlog.get_logger("imhub.batch")

# Under load (the last commit had more than one draft), commits start at most this
# often: a transaction costs ~0.2 ms of CPU whatever its size and ~20 µs per message,
# so gathering for a few ms makes each message several times cheaper. A lone
# message (nothing else was in flight) is written at once. On SQLite a batch of 40
# 1:1 messages costs the writer ~70 µs per message, one of 20 ~90-120 µs (commit,
# index pages and statements shared by more rows; tests/microbench/append_stages.py):
# 8 ms makes the batches of 5,000 msg/s ~40 messages, for at most 4 ms more latency.
COMMIT_INTERVAL_SECONDS = 0.008

# After an IntegrityError (another process stored one of the batch's cids between our
# dedup check and our insert) each draft is written alone, re-reading its dedup key
# each time, at most this often: a cid can lose that race again while other copies of
# it are still being committed elsewhere (a reconnect storm resending to two workers).
DEDUP_ATTEMPTS = 3
# Seconds a client is told to wait before resending a draft the database was too busy
# to store (error 5030 ``overloaded``).
RETRY_AFTER_SECONDS = 1

# PostgreSQL SQLSTATEs after which the same transaction may well succeed: serialization
# failure, deadlock, lock not available, statement timeout / cancel, and the server
# shutting down or starting; classes 08 (connection) and 53 (insufficient resources:
# too many connections, out of memory or disk) as a whole.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})

# The SQLite append runs on a plain sqlite3 cursor (Database.write_raw), so its errors
# come unwrapped.
_UNIQUE_VIOLATIONS = (IntegrityError, sqlite3.IntegrityError)

Result = tuple[Message, bool]
Outcome = Result | BaseException
# (draft, sink, outcome) of each non-future sink of one commit, in queue order.
Committed = list[tuple[Draft, Any, Outcome]]


class NotStored(Exception):
    """The outcome of a draft that was not stored (its transaction rolled back).

    ``retryable``: the database was busy or briefly unreachable (pool exhausted,
    statement timeout, deadlock, lost connection, SQLite locked), so sending the same
    cid again shortly will work; otherwise it is a bug or a broken database."""

    def __init__(self, cause: BaseException, retryable: bool) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.retryable = retryable


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` from a write means "busy, try again" rather than a bug."""
    if isinstance(exc, sa_exc.DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        exc = exc.orig
    if isinstance(exc, sqlite3.Error):
        # Another process held the write lock past busy_timeout ("database is locked").
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))
    if isinstance(exc, (sa_exc.TimeoutError, TimeoutError, OSError)):
        return True  # pool checkout timeout, a socket timeout or a lost connection
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(state, str) and (state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES):
            return True
    return False


def not_stored_error(outcome: BaseException, cid: str | None) -> Refused:
    """The error frame a client gets for a draft that was not stored: 5030
    ``overloaded`` with ``retry_after`` when a resend will work, else 5000 ``internal``."""
    if isinstance(outcome, NotStored) and outcome.retryable:
        return Refused(
            ErrorCode.OVERLOADED, "server busy, message not stored; retry with the same cid after retry_after seconds",
            status=503, cid=cid, retry_after=RETRY_AFTER_SECONDS,
        )
    return Refused(ErrorCode.INTERNAL, "message not stored; retry with the same cid", cid=cid)


class BatchWriter:
    def __init__(
        self,
        store: MessageStore,
        max_batch: int,
        on_commit: Callable[[Committed], None] | None = None,
        interval: float = COMMIT_INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._interval = interval
        self._on_commit = on_commit
        self._queue: deque[tuple[Draft, Any]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._idle: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        # Drafts queued or being written, not yet resolved / handed to on_commit.
        self.pending = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imhub-batch-writer")

    async def stop(self) -> None:
        """Finish what was submitted, then stop."""
        if self.pending and self._task is not None and not self._task.done():
            idle = asyncio.get_running_loop().create_future()
            self._idle.append(idle)
            await idle
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def enqueue(self, draft: Draft) -> asyncio.Future[Result]:
        """Queue ``draft``; the future resolves to ``(message, duplicate)`` after the
        commit. Futures resolve in queue order."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._put(draft, fut)
        return fut

    def enqueue_to(self, draft: Draft, sink: object) -> None:
        """Queue ``draft``; after its commit ``on_commit`` gets ``(draft, sink, outcome)``."""
        self._put(draft, sink)

    async def submit(self, draft: Draft) -> Result:
        """Store ``draft``; returns ``(message, duplicate)`` once committed."""
        return await self.enqueue(draft)

    def _put(self, draft: Draft, sink: object) -> None:
        self._queue.append((draft, sink))
        self.pending += 1
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _run(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        last_start = 0.0
        last_size = 0
        while True:
            if not queue:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            if last_size > 1 and len(queue) < self._max_batch:
                wait = last_start + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            last_start = loop.time()
            n = last_size = min(len(queue), self._max_batch)
            batch = [queue.popleft() for _ in range(n)]
            try:
                outcomes = await self._write(batch)
                self._resolve(batch, outcomes)
            finally:
                self.pending -= n
                if not self.pending:
                    for idle in self._idle:
                        if not idle.done():
                            idle.set_result(None)
                    self._idle.clear()

    async def _write(self, batch: list[tuple[Draft, Any]]) -> list[Outcome]:
        started = time.perf_counter()
        try:
            results = await self._store.append_batch([d for d, _ in batch])
        except _UNIQUE_VIOLATIONS:
            # Another process stored one of these cids between our check and insert;
            # retry one by one so each draft finds its stored twin or goes in alone.
            return [await self._write_one(draft) for draft, _ in batch]
        except Exception as exc:
            metrics.db_commit_failures.inc()
            return _not_stored(exc, len(batch))
        metrics.db_commit_seconds.observe(time.perf_counter() - started)
        metrics.db_commit_batch.observe(len(batch))
        _count(results)
        return list(results)

    async def _write_one(self, draft: Draft) -> Outcome:
        """Write ``draft`` alone. Each attempt starts by reading its dedup key again, so
        a twin committed by another process meanwhile is found (a duplicate, not an
        error); an IntegrityError means one more such race, so look again."""
        lost_race: Exception | None = None
        for _ in range(DEDUP_ATTEMPTS):
            try:
                (result,) = await self._store.append_batch([draft])
            except _UNIQUE_VIOLATIONS as exc:
                lost_race = exc
                continue
            except Exception as exc:
                metrics.db_commit_failures.inc()
                return _not_stored(exc, 1)[0]
            _count([result])
            return result
        assert lost_race is not None
        metrics.db_commit_failures.inc()
        # Still conflicting after re-reading the key each time: not a dedup race.
        return _not_stored(lost_race, 1, retry=False)[0]

    def _resolve(self, batch: list[tuple[Draft, Any]], outcomes: list[Outcome]) -> None:
        committed: Committed = []
        for (draft, sink), outcome in zip(batch, outcomes, strict=True):
            if isinstance(sink, asyncio.Future):
                if not sink.done():
                    if isinstance(outcome, BaseException):
                        sink.set_exception(outcome)
                    else:
                        sink.set_result(outcome)
            else:
                committed.append((draft, sink, outcome))
        if committed and self._on_commit is not None:
            try:
                self._on_commit(committed)
            except Exception:
                log.exception("after-commit callback failed", size=len(committed))


def _not_stored(exc: BaseException, n: int, retry: bool | None = None) -> list[Outcome]:
    """``n`` outcomes for drafts ``exc`` kept from being stored: logged (with the cause)
    and counted by the error code the clients get."""
    again = retryable(exc) if retry is None else retry
    outcome = NotStored(exc, again)
    code = ErrorCode.OVERLOADED if again else ErrorCode.INTERNAL
    metrics.messages_not_stored.labels(code.label).inc(n)
    if again:
        log.warning("messages not stored: database busy; clients told to retry", size=n, error=str(outcome))
    else:
        log.error("messages not stored", size=n, error=str(outcome), exc_info=exc)
    return [outcome] * n


def _count(results: list[Result]) -> None:
    dups = sum(1 for _, duplicate in results if duplicate)
    if dups:
        metrics.messages_duplicate.inc(dups)
    if len(results) > dups:
        metrics.messages_stored.inc(len(results) - dups)
