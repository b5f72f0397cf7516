"""Where media is decoded: a small pool of short-lived worker processes, with a bound
on how many decodes run and wait, per server process and per user.

Why processes, not threads: a decode within every cap still allocates hundreds of MB
(a 1-bit 6000x6000 PNG becomes 100+ MB of RGB; a long animation holds all its frames),
and a long-lived process does not give that memory back to the system — six parallel
bombs left the server at 2.7 GB RSS for good. A worker runs ONE task and exits
(``max_tasks_per_child=1``), so its memory goes with it; the workers are forked from a
forkserver that has Pillow and PyAV imported already, so a new one costs milliseconds,
not an interpreter start. Each worker also has an address-space limit: an input that
needs more fails there with MemoryError (refused), never in the server.

Like every ``multiprocessing`` child, a worker imports the parent's main module (unless
it is a package's ``__main__``, as with ``python -m imhub`` / the ``imhub`` script): a
custom launcher script must guard its start-up with ``if __name__ == "__main__":``.

Why a bound per user: one account uploading 50 images at once would otherwise hold
every worker while others wait; beyond its share it gets 429 at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import resource
from collections.abc import Callable, Hashable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from imhub.errors import ApiError, RateLimited
from imhub.media.errors import MediaRejected

T = TypeVar("T")

# Modules every worker needs, imported once in the forkserver instead of in each worker.
PRELOAD = ["imhub.media.images", "imhub.media.avmedia"]


class DecodeBusy(ApiError):
    """Every worker is busy and the queue is full: come back shortly."""

    def __init__(self) -> None:
        super().__init__("the server is busy processing media, try again shortly", status=503, retry_after=5)


def _limit_memory(max_bytes: int) -> None:
    """Worker initializer: cap the address space, so a decode that would need more gets
    MemoryError in the worker instead of growing it (or the OOM killer picking one)."""
    if max_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


class DecodePool:
    def __init__(self, workers: int, per_user: int, memory_bytes: int, queue_per_worker: int = 8) -> None:
        self._workers = workers
        self._per_user = per_user
        self._memory_bytes = memory_bytes
        self._max_waiting = workers * queue_per_worker
        self._slots = asyncio.Semaphore(workers)
        self._waiting = 0
        self._by_user: dict[Hashable, int] = {}
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=ctx,
                max_tasks_per_child=1,
                initializer=_limit_memory,
                initargs=(self._memory_bytes,),
            )
        return self._executor

    def in_flight(self, user: Hashable) -> int:
        return self._by_user.get(user, 0)

    async def run(self, user: Hashable, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process. ``fn`` and its arguments must pickle;
        MediaRejected raised there comes back as itself."""
        if self._by_user.get(user, 0) >= self._per_user:
            raise RateLimited("too many uploads in progress, wait for the others to finish", retry_after=2)
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise DecodeBusy()
        self._by_user[user] = self._by_user.get(user, 0) + 1
        waiting = True
        self._waiting += 1
        try:
            async with self._slots:
                self._waiting -= 1
                waiting = False
                future = asyncio.wrap_future(self._pool().submit(fn, *args))
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    # The worker goes on regardless: keep its slot until it is done, or
                    # cancelled requests would let more decodes run than there are slots.
                    with contextlib.suppress(BaseException):
                        await future
                    raise
                except BrokenProcessPool:
                    # A worker died (killed, or crashed inside a codec): drop the pool,
                    # the next decode gets a new one.
                    self._discard()
                    raise MediaRejected("the file could not be processed") from None
                except MemoryError:
                    raise MediaRejected("the file needs too much memory to process") from None
        finally:
            if waiting:  # cancelled while queued
                self._waiting -= 1
            left = self._by_user[user] - 1
            if left:
                self._by_user[user] = left
            else:
                del self._by_user[user]

    def _discard(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
