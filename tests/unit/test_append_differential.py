"""The two append implementations — SQLAlchemy Core (PostgreSQL, and SQLite before
the fast path) and the plain-sqlite3 fast path (SQLite's default) — run on the same
inputs and must store the same rows and answer the same outcomes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imhub.domain.model import Cmd, Draft, Media
from imhub.store import messages as messages_module
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore

FIXED_TS = 1_700_000_000_000
USERS = 4
GROUP = 1


async def _store(path: Path) -> tuple[Database, MessageStore, list[int]]:
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    db = Database(url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"1380000{i:04d}", passwd_hash="h")).id for i in range(USERS)]
    return db, MessageStore(db), ids


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table an append writes, in a stable order."""
    con = sqlite3.connect(path)
    try:
        tables = {
            "messages": "SELECT id, conv, seq, ts, userid, cmd, dstid, media, content, pic, url, memo, amount, cid, "
                        "recalled FROM messages ORDER BY id",
            "conversations": "SELECT conv, last_seq FROM conversations ORDER BY conv",
            "cursors": "SELECT user_id, conv, delivered_seq, read_seq FROM cursors ORDER BY 1, 2",
            "search": "SELECT rowid, terms FROM message_fts ORDER BY rowid",
        }
        out = {}
        for name, sql in tables.items():
            try:
                out[name] = con.execute(sql).fetchall()
            except sqlite3.OperationalError as exc:  # a table this schema names differently
                pytest.fail(f"{name}: {exc}")
        return out
    finally:
        con.close()


draft_specs = st.lists(
    st.tuples(
        st.integers(0, USERS - 1),            # sender
        st.booleans(),                        # to the group (else to the next user)
        st.sampled_from(["hello", "你好 世界", "meet at 5", ""]),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),  # cid (repeats on purpose)
    ),
    min_size=1,
    max_size=25,
)


def _drafts(ids: list[int], specs: list[tuple[int, bool, str, str | None]]) -> list[Draft]:
    out = []
    for sender, to_group, text, cid in specs:
        if to_group:
            out.append(Draft(userid=ids[sender], cmd=Cmd.GROUP, dstid=GROUP, media=Media.TEXT,
                             content=text or "x", cid=cid))
        else:
            peer = ids[(sender + 1) % USERS]
            out.append(Draft(userid=ids[sender], cmd=Cmd.PRIVATE, dstid=peer, media=Media.TEXT,
                             content=text or "x", cid=cid))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(draft_specs, min_size=1, max_size=3))
async def test_core_and_fast_path_store_the_same(tmp_path_factory: pytest.TempPathFactory, batches) -> None:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("diff")
    fast_db, fast, ids = await _store(base / "fast.db")
    core_db, core, core_ids = await _store(base / "core.db")
    assert ids == core_ids
    original = messages_module.now_ms
    messages_module.now_ms = lambda: FIXED_TS  # type: ignore[assignment]
    try:
        for specs in batches:
            drafts = _drafts(ids, specs)
            by_fast = await fast_db.write_raw(fast._append_sqlite, drafts)
            by_core = await core_db.write(core._append_core, drafts)
            assert by_fast == by_core
    finally:
        messages_module.now_ms = original
        await fast_db.dispose()
        await core_db.dispose()
    assert _rows(base / "fast.db") == _rows(base / "core.db")
