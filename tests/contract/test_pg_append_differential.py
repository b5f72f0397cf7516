"""On PostgreSQL the append has two implementations: SQLAlchemy Core (batches with
mentions) and the one-statement path (``PgAppendOps``, every other batch). Run on the
same batches — repeated and in-batch cids, no cid, several conversations and a group,
replies and forwards — they must answer the same and store the same rows."""

from __future__ import annotations

import random

import pytest

from imhub.domain.model import Cmd, Draft, Media
from imhub.store import messages as messages_module
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore
from tests.conftest import fresh_postgres_database

FIXED_TS = 1_700_000_000_000
USERS = 4
GROUP = 1
TABLES = {
    "messages": "SELECT id, conv, seq, ts, userid, cmd, dstid, media, content, pic, url, memo, amount, cid, recalled, "
    "reply_to, mentions, forwarded, edited_at FROM messages ORDER BY id",
    "conversations": "SELECT conv, last_seq, mention_all_seq FROM conversations ORDER BY conv",
    "cursors": "SELECT user_id, conv, delivered_seq, read_seq, mention_seq FROM cursors ORDER BY 1, 2",
    "search": "SELECT id, tsv::text FROM message_search ORDER BY id",
}


def _batches(ids: list[int], seed: int) -> list[list[Draft]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(30):
        batch = []
        for _ in range(rnd.randint(1, 25)):
            sender = ids[rnd.randrange(USERS)]
            to_group = rnd.random() < 0.3
            peer = ids[(ids.index(sender) + rnd.randint(1, USERS - 1)) % USERS]
            batch.append(Draft(
                userid=sender, cmd=Cmd.GROUP if to_group else Cmd.PRIVATE, dstid=GROUP if to_group else peer,
                media=rnd.choice([Media.TEXT, Media.TEXT, Media.IMAGE, Media.NEWS]),
                content=rnd.choice(["hello", "你好 世界", "meet at 5", " "]), memo=rnd.choice(["", "evening tide"]),
                pic=rnd.choice(["", "https://x/p.png"]), amount=rnd.randint(0, 3),
                cid=rnd.choice([None, *"abcdefgh"]) if rnd.random() < 0.5 else f"u{rnd.randrange(10**9)}",
                reply_to=rnd.choice([0, 0, 7]), forwarded=rnd.random() < 0.2,
            ))
        out.append(batch)
    return out


async def _store(url: str) -> tuple[Database, MessageStore, list[int]]:
    await migrate(url)
    db = Database(url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"1380000{i:04d}", passwd_hash="h")).id for i in range(USERS)]
    return db, MessageStore(db), ids


async def _rows(db: Database) -> dict[str, list[tuple[object, ...]]]:
    rows = await db.write_pg(lambda pg: {name: [tuple(r) for r in pg.fetch(sql)] for name, sql in TABLES.items()})
    assert rows["messages"] and rows["search"]
    return rows


@pytest.mark.parametrize("seed", [1, 2])
async def test_one_statement_and_core_store_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messages_module, "now_ms", lambda: FIXED_TS)
    async with fresh_postgres_database() as fast_url, fresh_postgres_database() as core_url:
        fast_db, fast, ids = await _store(fast_url)
        core_db, core, core_ids = await _store(core_url)
        try:
            assert ids == core_ids
            for drafts in _batches(ids, seed):
                by_fast = await fast.append_batch(drafts)
                by_core = await core_db.write(core._append_core, drafts)
                assert by_fast == by_core
            assert await _rows(fast_db) == await _rows(core_db)
        finally:
            await fast_db.dispose()
            await core_db.dispose()
