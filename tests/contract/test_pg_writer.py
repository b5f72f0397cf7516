"""The message append's own PostgreSQL connection (``Database.write_pg``): it comes
back after being lost, and the batch it was writing is either stored whole or answered
"retry" (5030), never half stored."""

from __future__ import annotations

import pytest
from sqlalchemy import text as sql

from imhub.domain.model import Draft, Message
from imhub.services.batch import retryable
from imhub.store.db import PgStatements
from imhub.store.messages import MessageStore
from tests.contract.conftest import PgUsers


def _backend_pid(pg: PgStatements) -> int:
    return int(pg.fetch("SELECT pg_backend_pid()")[0][0])


async def _append_or_retryable(store: MessageStore, draft: Draft) -> Message | None:
    try:
        ((message, _),) = await store.append_batch([draft])
    except Exception as exc:  # the point is which kind it is
        assert retryable(exc), exc
        return None
    return message


@pytest.mark.parametrize("wait_for_eof", [True, False])
async def test_append_connection_comes_back_after_it_was_killed(pg_users: PgUsers, wait_for_eof: bool) -> None:
    db, store, a, b = pg_users.db, pg_users.store, pg_users.a, pg_users.b
    await store.append_batch([Draft(userid=a, cmd=10, dstid=b, media=1, content="before", cid="c0")])
    pid = await db.write_pg(_backend_pid)
    async with db.async_engine.connect() as conn:
        assert (await conn.execute(sql("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar()
        if wait_for_eof:
            await conn.execute(sql("SELECT pg_sleep(0.2)"))
    draft = Draft(userid=a, cmd=10, dstid=b, media=1, content="after", cid="c1")
    # The first attempt may meet the dead connection: then it says "retry", and
    # the resend (same cid) is stored once.
    first = await _append_or_retryable(store, draft)
    if wait_for_eof:
        assert first is not None  # the close was seen: a new connection at once
    ((again, duplicate),) = await store.append_batch([draft])
    assert duplicate == (first is not None) and again.seq == 2
    assert await db.write_pg(_backend_pid) != pid
    assert [m.content for m in await store.after(again.conv, 0, 10)] == ["before", "after"]
