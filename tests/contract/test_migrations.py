"""The migrations create exactly imhub.store.tables, and 0003 (consent) moves existing
data safely: friendships and memberships stay, old groups become open + shared, owner
rows become role owner. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from imhub.store.engine import create_engine
from imhub.store.migrate import migrate
from imhub.store.tables import metadata
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


async def _run(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _ignored(diff: Any) -> bool:
    # The search index (0002) is dialect-specific SQL on purpose, not in the metadata.
    text_ = repr(diff)
    return "message_fts" in text_ or "message_search" in text_


async def test_migrations_match_the_tables(empty_url: str) -> None:
    await migrate(empty_url)

    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return [d for d in compare_metadata(ctx, metadata) if not _ignored(d)]

    assert await _run(empty_url, diff) == []


async def test_consent_migration_keeps_existing_data(empty_url: str) -> None:
    await migrate(empty_url, "0002")

    def seed(conn: Connection) -> None:
        for uid in (1, 2, 3):
            conn.execute(
                text("INSERT INTO users (id, mobile, passwd, createat) VALUES (:i, :m, 'h', 0)"),
                {"i": uid, "m": f"1380000000{uid}"},
            )
        conn.execute(text("INSERT INTO contacts VALUES (1, 2, 0), (2, 1, 0)"))
        conn.execute(text("INSERT INTO communities (id, name, ownerid, createat) VALUES (7, 'old', 1, 0)"))
        conn.execute(text("INSERT INTO members (group_id, user_id, joined) VALUES (7, 1, 0), (7, 3, 1)"))

    await _run(empty_url, seed)
    await migrate(empty_url)

    def read(conn: Connection) -> tuple[Any, ...]:
        return (
            conn.execute(text("SELECT owner_id, dst_id FROM contacts ORDER BY owner_id")).all(),
            conn.execute(text("SELECT join_policy, history_visibility FROM communities")).all(),
            conn.execute(text("SELECT user_id, role, join_seq FROM members ORDER BY user_id")).all(),
        )

    contacts, groups, members = await _run(empty_url, read)
    assert [tuple(r) for r in contacts] == [(1, 2), (2, 1)]
    assert [tuple(r) for r in groups] == [("open", "shared")]
    assert [tuple(r) for r in members] == [(1, "owner", 0), (3, "member", 0)]
