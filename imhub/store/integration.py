"""The server API's rows: users provisioned by an external id (``ext_users``) and the
API keys (``api_keys``, hashes only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from imhub.clock import now_ms
from imhub.store.db import Database
from imhub.store.tables import api_keys, ext_users, users

# users.passwd of a provisioned user: not an argon2 hash, so no password verifies.
NO_PASSWORD = "!"  # noqa: S105 - a marker, not a password


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created: int
    revoked: int


def _key(r: Any) -> ApiKeyRow:
    return ApiKeyRow(
        id=int(r.id), name=r.name, prefix=r.prefix, scopes=frozenset(s for s in r.scopes.split(",") if s),
        created=int(r.created), revoked=int(r.revoked),
    )


def placeholder_mobile() -> str:
    """users.mobile is unique and required; a provisioned user gets one that no login or
    lookup accepts (they are digits only)."""
    return "x" + secrets.token_hex(10)[:19]


class IntegrationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- users by external id -------------------------------------------------------

    async def provision(self, ext_id: str, nickname: str, avatar: str) -> tuple[int, bool]:
        """The user with ``ext_id``, created (without a password) if there is none:
        ``(user id, created)``. Two concurrent provisions of one id make one user."""

        def run(conn: Connection) -> tuple[int, bool]:
            found = conn.execute(select(ext_users.c.user_id).where(ext_users.c.ext_id == ext_id)).scalar()
            if found is not None:
                return int(found), False
            now = now_ms()
            user_id = conn.execute(
                insert(users).values(
                    mobile=placeholder_mobile(), passwd=NO_PASSWORD, nickname=nickname, avatar=avatar, sex="U",
                    memo="", createat=now, last_seen=0, banned=False,
                ).returning(users.c.id)
            ).scalar_one()
            conn.execute(insert(ext_users).values(ext_id=ext_id, user_id=user_id, created=now))
            return int(user_id), True

        try:
            return await self._db.write(run)
        except IntegrityError:
            # Another process provisioned the same id between our read and write.
            found = await self.user_id(ext_id)
            if found is None:
                raise
            return found, False

    async def user_id(self, ext_id: str) -> int | None:
        rows = await self._db.fetch(select(ext_users.c.user_id).where(ext_users.c.ext_id == ext_id))
        return int(rows[0][0]) if rows else None

    async def ext_ids(self, user_ids: list[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        rows = await self._db.fetch(
            select(ext_users.c.user_id, ext_users.c.ext_id).where(ext_users.c.user_id.in_(user_ids))
        )
        return {int(r.user_id): str(r.ext_id) for r in rows}

    # --- API keys -------------------------------------------------------------------

    async def add_key(self, name: str, key_hash: str, prefix: str, scopes: list[str]) -> ApiKeyRow:
        created = now_ms()
        stmt = insert(api_keys).values(
            name=name, key_hash=key_hash, prefix=prefix, scopes=",".join(scopes), created=created
        ).returning(api_keys.c.id)
        key_id = await self._db.write(lambda conn: conn.execute(stmt).scalar_one())
        return ApiKeyRow(int(key_id), name, prefix, frozenset(scopes), created, 0)

    async def key_by_hash(self, key_hash: str) -> ApiKeyRow | None:
        rows = await self._db.fetch(select(api_keys).where(api_keys.c.key_hash == key_hash))
        return _key(rows[0]) if rows else None

    async def keys(self) -> list[ApiKeyRow]:
        return [_key(r) for r in await self._db.fetch(select(api_keys).order_by(api_keys.c.id))]

    async def revoke_key(self, key_id: int) -> bool:
        stmt = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked == 0).values(revoked=now_ms())
        return await self._db.execute(stmt) > 0
