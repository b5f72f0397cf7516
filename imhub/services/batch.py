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
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from imhub import metrics
from imhub.domain.model import Draft, Message
from imhub.store.messages import MessageStore

log = structlog.get_logger("imhub.batch")

# Under load (the last commit had more than one draft), commits start at most this
# often: a transaction costs ~0.2 ms of CPU whatever its size and ~20 µs per message,
# so gathering for a few ms makes each message several times cheaper. A lone
# message (nothing else was in flight) is written at once.
COMMIT_INTERVAL_SECONDS = 0.004

Result = tuple[Message, bool]
Outcome = Result | BaseException
# (draft, sink, outcome) of each non-future sink of one commit, in queue order.
Committed = list[tuple[Draft, Any, Outcome]]


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
        except IntegrityError:
            # Another process stored one of these cids between our check and insert;
            # retry one by one so each draft finds its stored twin or goes in alone.
            return [await self._write_one(draft) for draft, _ in batch]
        except Exception as exc:
            metrics.db_commit_failures.inc()
            log.exception("batch write failed", size=len(batch))
            return [exc] * len(batch)
        metrics.db_commit_seconds.observe(time.perf_counter() - started)
        metrics.db_commit_batch.observe(len(batch))
        _count(results)
        return list(results)

    async def _write_one(self, draft: Draft) -> Outcome:
        try:
            (result,) = await self._store.append_batch([draft])
        except Exception as exc:
            return exc
        _count([result])
        return result

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


def _count(results: list[Result]) -> None:
    dups = sum(1 for _, duplicate in results if duplicate)
    if dups:
        metrics.messages_duplicate.inc(dups)
    if len(results) > dups:
        metrics.messages_stored.inc(len(results) - dups)
