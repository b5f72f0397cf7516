"""BatchWriter against the real store (SQLite and PostgreSQL) when another process
commits the same cid at the same time: the sender gets its message back as a
duplicate, never error 5000 (issue #22, item 4).

The race window — another worker commits a cid between this writer's dedup check and
its insert — is opened on purpose: :class:`RacingStore` runs its next ``races`` dedup
checks as if they came just before the other worker's commit (they see nothing), so
the insert meets the other worker's row in the real unique index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.testing import capture_logs

from imhub import metrics
from imhub.domain.model import Draft, Message
from imhub.errors import ErrorCode
from imhub.protocol.frames import encode_error
from imhub.services.batch import BatchWriter, NotStored, Outcome, not_stored_error
from imhub.store.append_ops import AppendOps, Key
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.tables import messages
from imhub.store.users import UserStore
from tests.pglocks import until_blocked_by


class _CheckBeforeTheirCommit:
    """AppendOps whose dedup check ran before the other worker's commit."""

    def __init__(self, ops: AppendOps) -> None:
        self._ops = ops

    def existing(self, keys: set[Key]) -> dict[Key, Message]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)


class RacingStore(MessageStore):
    def __init__(self, db: Database, races: int) -> None:
        super().__init__(db)
        self.races = races
        self.appends = 0

    def _append_batch(self, ops: AppendOps, drafts: list[Draft]) -> list[tuple[Message, bool]]:
        self.appends += 1
        if self.races > 0:
            self.races -= 1
            ops = _CheckBeforeTheirCommit(ops)  # type: ignore[assignment]
        return super()._append_batch(ops, drafts)


def text(a: int, b: int, content: str, cid: str | None) -> Draft:
    return Draft(userid=a, cmd=10, dstid=b, media=1, content=content, cid=cid)


@pytest.fixture
async def two_workers(db_url: str) -> AsyncIterator[tuple[Database, Database, int, int]]:
    """Two Database objects on one database: this worker and another one."""
    mine, theirs = Database(db_url), Database(db_url)
    users = UserStore(mine)
    a = (await users.create(mobile="13800000001", passwd_hash="h")).id
    b = (await users.create(mobile="13800000002", passwd_hash="h")).id
    yield mine, theirs, a, b
    await mine.dispose()
    await theirs.dispose()


async def write(writer: BatchWriter, drafts: Iterable[Draft]) -> list[Outcome]:
    futures = [writer.enqueue(d) for d in drafts]
    writer.start()
    try:
        return list(await asyncio.gather(*futures, return_exceptions=True))
    finally:
        await writer.stop()


def not_stored_count(label: str) -> float:
    return metrics.messages_not_stored.labels(label)._value.get()


@pytest.mark.parametrize("races", [1, 2])
async def test_resend_racing_its_first_copy_is_a_duplicate(two_workers, races: int) -> None:
    """``races`` 1: only the batch insert loses the race; 2: the one-by-one retry
    loses it too (another copy still being committed), where the old writer answered
    5000 without a log line."""
    mine, theirs, a, b = two_workers
    (twin, _), = await MessageStore(theirs).append_batch([text(a, b, "first copy", "c-1")])
    store = RacingStore(mine, races)
    outcomes = await write(BatchWriter(store, max_batch=16), [text(a, b, "resent", "c-1"), text(a, b, "next", "c-2")])
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    (m1, dup1), (m2, dup2) = outcomes  # type: ignore[misc]
    assert (m1, dup1) == (twin, True)
    assert not dup2 and m2.cid == "c-2" and m2.seq == twin.seq + 1
    assert [m.cid for m in await store.after(twin.conv, 0, 10)] == ["c-1", "c-2"]


async def test_a_store_failure_is_logged_and_counted(two_workers) -> None:
    """A draft the store refuses for good (here: a conflict that re-reading the dedup
    key cannot resolve) is answered 5000, logged at error level with its cause, and
    counted in /metrics."""
    mine, _, a, b = two_workers
    store = RacingStore(mine, races=100)
    await MessageStore(mine).append_batch([text(a, b, "first copy", "c-9")])
    before = not_stored_count("internal")
    with capture_logs() as logs:
        (outcome,) = await write(BatchWriter(store, max_batch=16), [text(a, b, "resent", "c-9")])
    assert isinstance(outcome, NotStored) and not outcome.retryable
    assert not_stored_error(outcome, "c-9").code is ErrorCode.INTERNAL
    assert not_stored_count("internal") == before + 1
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and "IntegrityError" in errors[0]["error"] and errors[0]["size"] == 1


async def test_a_busy_database_is_a_retryable_overload(two_workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool checkout timeout is not a bug: the client gets 5030 with retry_after,
    logged at warning level and counted."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    mine, _, a, b = two_workers
    store = MessageStore(mine)

    async def exhausted(drafts: list[Draft]) -> list[tuple[Message, bool]]:
        raise PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out, timeout 30.00")

    monkeypatch.setattr(store, "append_batch", exhausted)
    before = not_stored_count("overloaded")
    with capture_logs() as logs:
        outcomes = await write(BatchWriter(store, max_batch=16), [text(a, b, "x", "c-1"), text(a, b, "y", "c-2")])
    assert all(isinstance(o, NotStored) and o.retryable for o in outcomes)
    err = not_stored_error(outcomes[0], "c-1")  # type: ignore[arg-type]
    assert (err.code, err.extra["retry_after"], err.cid) == (ErrorCode.OVERLOADED, 1, "c-1")
    frame = orjson.loads(encode_error(err))
    assert (frame["code"], frame["error"], frame["retry_after"], frame["cid"]) == (5030, "overloaded", 1, "c-1")
    assert not_stored_count("overloaded") == before + 2
    assert any(e["log_level"] == "warning" and "QueuePool" in e["error"] for e in logs)




async def _open_insert(db: Database, a: int, b: int, cid: str, seq: int) -> AsyncConnection:
    """Another worker's transaction that has inserted ``cid`` and not committed yet."""
    conn = await db.async_engine.connect()
    await conn.begin()
    await conn.execute(insert(messages).values(
        conv=f"p{min(a, b)}_{max(a, b)}", seq=seq, userid=a, cmd=10, dstid=b, media=1, content="other copy",
        cid=cid, ts=1,
    ))
    return conn


async def test_postgres_resends_committed_concurrently_elsewhere(postgres_url: str) -> None:
    """No simulated window: two other transactions hold uncommitted copies of c-1 and
    c-2 while this writer stores both in one batch. The batch insert waits on c-1, and
    fails when that copy commits; the one-by-one retry finds c-1, then waits on c-2 and
    fails again when it commits — the second race the old writer answered with 5000."""
    await migrate(postgres_url)
    mine, theirs = Database(postgres_url), Database(postgres_url)
    try:
        users = UserStore(mine)
        a = (await users.create(mobile="13800000001", passwd_hash="h")).id
        b = (await users.create(mobile="13800000002", passwd_hash="h")).id
        first = await _open_insert(theirs, a, b, "c-1", 1001)
        second = await _open_insert(theirs, a, b, "c-2", 1002)
        writer = BatchWriter(MessageStore(mine), max_batch=16)
        written = asyncio.create_task(write(writer, [text(a, b, "resent", "c-1"), text(a, b, "resent", "c-2")]))
        await until_blocked_by(mine, first, "the batch insert")
        await first.commit()
        await until_blocked_by(mine, second, "the retry of c-2")
        await second.commit()
        outcomes = await written
        await first.close()
        await second.close()
        assert [(o[0].seq, o[1]) if isinstance(o, tuple) else o for o in outcomes] == [(1001, True), (1002, True)]
    finally:
        await mine.dispose()
        await theirs.dispose()
