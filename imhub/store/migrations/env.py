"""Alembic environment: migrations run on a connection handed in by imhub.store.migrate
(or, for ``alembic revision --autogenerate`` during development, on a fresh one)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from imhub.store.engine import create_engine
from imhub.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_own_engine() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_own_engine())
