"""The delivered-cursor flush and the message append lock cursor rows in the same
order on PostgreSQL, so they cannot deadlock (issue #22, item 5).

Under load the append upserts the senders' cursors (sorted by user and conversation)
while the once-a-second flush upserts the recipients' — in 1:1 chats the same rows. The
flush used to go in delivery order: each transaction held a row the other wanted, and
PostgreSQL's deadlock detector aborted one after a second. When that was the append,
its whole batch (up to IMHUB_DB_BATCH_MAX senders) got error 5000."""

from __future__ import annotations

import asyncio

from sqlalchemy import text as sql

from tests.contract.conftest import PgUsers
from tests.pglocks import until_blocked_by

_MARK_READ = sql(
    "INSERT INTO cursors (user_id, conv, delivered_seq, read_seq) VALUES (:u, :c, :s, :s) "
    "ON CONFLICT (user_id, conv) DO UPDATE SET read_seq = greatest(cursors.read_seq, excluded.read_seq)"
)


async def test_cursor_flush_and_append_take_rows_in_one_order(pg_users: PgUsers) -> None:
    db, store, a, b = pg_users.db, pg_users.store, pg_users.a, pg_users.b
    conv = f"p{a}_{b}"
    await store.advance_delivered([(a, conv, 1), (b, conv, 1)])
    # The append, half way through its sorted cursor upserts: a's row is locked.
    append = await db.async_engine.connect()
    await append.begin()
    await append.execute(_MARK_READ, {"u": a, "c": conv, "s": 2})
    # The flush, with b's delivery seen first (delivery order).
    flush = asyncio.create_task(store.advance_delivered([(b, conv, 3), (a, conv, 3)]))
    await until_blocked_by(db, append, "the flush")
    await append.execute(_MARK_READ, {"u": b, "c": conv, "s": 2})  # the deadlock, if the flush holds b
    await append.commit()
    await append.close()
    await flush
    assert await store.cursors_in(conv) == {a: (3, 2), b: (3, 2)}
