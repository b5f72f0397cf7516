"""BatchWriter with a fake store: commit order, the one-by-one retry after an
IntegrityError, and draining on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy.exc import IntegrityError

from imhub.domain.model import Cmd, Draft, Media, Message
from imhub.services.batch import BatchWriter, Committed, NotStored


def draft(n: int, cid: str | None = None) -> Draft:
    return Draft(userid=1, cmd=Cmd.PRIVATE, dstid=2, media=Media.TEXT, content=f"m{n}", cid=cid or f"c{n}")


class FakeStore:
    """Stores drafts in memory; ``gate`` holds a write until set, ``fail_batches``
    raises IntegrityError for batches of more than one draft that many times."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.stored: dict[str | None, Message] = {}
        self.gate: asyncio.Event | None = None
        self.fail_batches = 0
        self.broken_cids: set[str] = set()

    async def append_batch(self, drafts: Sequence[Draft]) -> list[tuple[Message, bool]]:
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append([d.content for d in drafts])
        if len(drafts) > 1 and self.fail_batches:
            self.fail_batches -= 1
            raise IntegrityError("INSERT", {}, Exception("unique"))
        if any(d.cid in self.broken_cids for d in drafts):
            raise RuntimeError("disk on fire")
        out = []
        for d in drafts:
            if d.cid in self.stored:
                out.append((self.stored[d.cid], True))
                continue
            m = Message(len(self.stored) + 1, d.conv, len(self.stored) + 1, 0, d.userid, d.cmd, d.dstid, d.media,
                        d.content, d.pic, d.url, d.memo, d.amount, d.cid, False)
            self.stored[d.cid] = m
            out.append((m, False))
        return out


async def test_outcomes_come_back_in_queue_order_and_batched() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    seen: list[Committed] = []
    writer = BatchWriter(store, max_batch=3, on_commit=seen.append)  # type: ignore[arg-type]
    writer.start()
    for n in range(7):
        writer.enqueue_to(draft(n), n)
    await asyncio.sleep(0)
    store.gate.set()
    await writer.stop()
    sinks = [sink for batch in seen for _, sink, _ in batch]
    assert sinks == list(range(7))
    assert all(len(b) <= 3 for b in store.batches)
    assert [c for b in store.batches for c in b] == [f"m{n}" for n in range(7)]
    assert writer.pending == 0


async def test_integrity_error_retries_one_by_one_and_finds_the_stored_twin() -> None:
    store = FakeStore()
    writer = BatchWriter(store, max_batch=10)  # type: ignore[arg-type]
    writer.start()
    first = await writer.submit(draft(1))
    store.fail_batches = 1  # "another process stored one of these cids meanwhile"
    store.gate = asyncio.Event()
    futures = [writer.enqueue(draft(1)), writer.enqueue(draft(2)), writer.enqueue(draft(3))]
    store.gate.set()
    results = await asyncio.gather(*futures)
    await writer.stop()
    assert results[0] == (first[0], True)
    assert [dup for _, dup in results[1:]] == [False, False]
    assert store.batches[-3:] == [["m1"], ["m2"], ["m3"]]


async def test_a_failed_write_fails_only_its_batch() -> None:
    store = FakeStore()
    store.broken_cids = {"bad"}
    writer = BatchWriter(store, max_batch=1)  # type: ignore[arg-type]
    writer.start()
    bad = writer.enqueue(draft(1, cid="bad"))
    good = writer.enqueue(draft(2))
    with pytest.raises(NotStored) as failed:
        await bad
    assert isinstance(failed.value.cause, RuntimeError) and not failed.value.retryable
    assert (await good)[1] is False
    await writer.stop()


async def test_stop_finishes_what_was_queued() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    seen: list[Committed] = []
    writer = BatchWriter(store, max_batch=2, on_commit=seen.append)  # type: ignore[arg-type]
    writer.start()
    for n in range(5):
        writer.enqueue_to(draft(n), n)
    stopping = asyncio.create_task(writer.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done()  # waits for the held write
    store.gate.set()
    await stopping
    assert sorted(sink for batch in seen for _, sink, _ in batch) == list(range(5))
