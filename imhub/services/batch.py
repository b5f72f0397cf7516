"""Group commit (the seed's "合并写数据库"): drafts submitted while a transaction is in
flight are written together in the next one. One writer task per process; each
submitter awaits its own result, which resolves only after the commit."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from sqlalchemy.exc import IntegrityError

from imhub import metrics
from imhub.domain.model import Draft, Message
from imhub.store.messages import MessageStore

log = structlog.get_logger("imhub.batch")

Result = tuple[Message, bool]


class BatchWriter:
    def __init__(self, store: MessageStore, max_batch: int) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Draft, asyncio.Future[Result]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imhub-batch-writer")

    async def stop(self) -> None:
        """Finish what was submitted, then stop."""
        await self._queue.join()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def enqueue(self, draft: Draft) -> asyncio.Future[Result]:
        """Queue ``draft``; the future resolves to ``(message, duplicate)`` after the
        commit. Futures resolve in queue order."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((draft, fut))
        return fut

    async def submit(self, draft: Draft) -> Result:
        """Store ``draft``; returns ``(message, duplicate)`` once committed."""
        return await self.enqueue(draft)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[tuple[Draft, asyncio.Future[Result]]]) -> None:
        started = time.perf_counter()
        try:
            results = await self._store.append_batch([d for d, _ in batch])
        except IntegrityError:
            # Another process stored one of these cids between our check and insert;
            # retry one by one so each draft finds its stored twin or goes in alone.
            for item in batch:
                await self._write_one(*item)
            return
        except Exception as exc:
            metrics.db_commit_failures.inc()
            log.exception("batch write failed", size=len(batch))
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        metrics.db_commit_seconds.observe(time.perf_counter() - started)
        metrics.db_commit_batch.observe(len(batch))
        _count(results)
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _write_one(self, draft: Draft, fut: asyncio.Future[Result]) -> None:
        try:
            (result,) = await self._store.append_batch([draft])
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        _count([result])
        if not fut.done():
            fut.set_result(result)


def _count(results: list[Result]) -> None:
    dups = sum(1 for _, duplicate in results if duplicate)
    if dups:
        metrics.messages_duplicate.inc(dups)
    if len(results) > dups:
        metrics.messages_stored.inc(len(results) - dups)
