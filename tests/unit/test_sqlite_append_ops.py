"""SqliteAppendOps runs each step of an append as one multi-row statement, split only
where SQLite's bound-parameter limit requires. Here the limit is lowered to 40 so a
batch spans many chunks: the result must be the same as one statement would give."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imhub.domain.model import Draft
from imhub.domain.ngrams import query_phrases
from imhub.store.append_ops import SqliteAppendOps
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore


async def test_chunked_statements_store_what_one_statement_would(tmp_path: Path) -> None:
    path = tmp_path / "imhub.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    db = Database(url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"138000000{i:02d}", passwd_hash="h")).id for i in range(12)]
    store = MessageStore(db)
    await db.dispose()

    # 11 conversations (ids[0] with each other user), 5 messages in each, interleaved;
    # two drafts repeat a cid of the same batch and one repeats a stored cid.
    stored_first = Draft(userid=ids[0], cmd=10, dstid=ids[1], media=1, content="before", cid="old")
    drafts = [
        Draft(userid=ids[0], cmd=10, dstid=peer, media=1, content=f"m{n} to {peer}", cid=f"c{n}-{peer}")
        for n in range(5) for peer in ids[1:]
    ]
    drafts += [drafts[3], drafts[20], Draft(userid=ids[0], cmd=10, dstid=ids[1], media=1, content="again", cid="old")]

    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40)  # 2 message rows per INSERT
        cur = raw.cursor()

        def append(batch: list[Draft]) -> list[tuple[object, bool]]:
            cur.execute("BEGIN IMMEDIATE")
            out = store._append_batch(SqliteAppendOps(cur), batch)
            raw.commit()
            return out  # type: ignore[return-value]

        (first, dup), = append([stored_first])
        assert not dup
        results = append(drafts)
    finally:
        raw.close()

    messages = [m for m, _ in results]
    assert [dup for _, dup in results] == [False] * 55 + [True, True, True]
    assert messages[55] == messages[3] and messages[56] == messages[20] and messages[57] == first
    fresh = messages[:55]
    assert len({m.id for m in fresh}) == 55 and min(m.id for m in fresh) == first.id + 1  # type: ignore[attr-defined]
    for peer in ids[1:]:
        conv = f"p{min(ids[0], peer)}_{max(ids[0], peer)}"
        seqs = [m.seq for m in fresh if m.conv == conv]  # type: ignore[attr-defined]
        start = 2 if peer == ids[1] else 1  # "before" took seq 1 of the first conversation
        assert seqs == list(range(start, start + 5)), (conv, seqs)

    db = Database(url)
    try:
        store = MessageStore(db)
        convs = [f"p{min(ids[0], p)}_{max(ids[0], p)}" for p in ids[1:]]
        last = await store.last_seqs(convs)
        assert last == {c: (6 if i == 0 else 5) for i, c in enumerate(convs)}
        assert [m.content for m in await store.after(convs[1], 0, 10)] == [f"m{n} to {ids[2]}" for n in range(5)]
        hits = await store.search(convs, query_phrases("m3 to"), 10**9, 50)
        assert {m.dstid for m in hits} == set(ids[1:])  # the index got every row
        # the sender has read their own messages, in every conversation
        assert {c: read for c, (_, read) in (await store.cursors_of(ids[0])).items()} == last
    finally:
        await db.dispose()
