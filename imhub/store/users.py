"""Users and login tokens.

Tokens are opaque random strings handed to the client once; only their SHA-256 is
stored, so a leaked database does not leak sessions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from imhub.clock import now_ms
from imhub.store.db import Database, Rows
from imhub.store.tables import tokens, users

_TOUCH_LAST_SEEN = update(users).where(users.c.id == bindparam("uid")).values(last_seen=bindparam("when"))


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    mobile: str
    passwd: str
    nickname: str
    avatar: str
    sex: str
    memo: str
    createat: int
    last_seen: int
    banned: bool


class DuplicateMobile(Exception):
    """A user with this mobile number already exists."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_owner(rows: Rows, digest: str, now: int) -> int | None:
    """In a :meth:`Database.read_rows` transaction: the user owning the token with hash
    ``digest`` if unexpired at ``now``."""
    found = rows(_TOKEN_OWNER, {"h": digest})
    if not found:
        return None
    user_id, expires = found[0]
    return None if expires <= now else int(user_id)


def _row(r: Any) -> UserRow:
    return UserRow(**dict(r._mapping))


# Every handshake and API call asks this: built once.
_TOKEN_OWNER = select(tokens.c.user_id, tokens.c.expires).where(tokens.c.token_hash == bindparam("h"))


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        return self._db

    async def create(
        self, *, mobile: str, passwd_hash: str, nickname: str = "", avatar: str = "", sex: str = "U",
        memo: str = "",
    ) -> UserRow:
        """Insert a user; raises :class:`DuplicateMobile` if the mobile is taken."""
        values = dict(
            mobile=mobile, passwd=passwd_hash, nickname=nickname, avatar=avatar, sex=sex, memo=memo,
            createat=now_ms(), last_seen=0, banned=False,
        )
        stmt = insert(users).values(**values).returning(users.c.id)
        try:
            user_id = await self._db.write(lambda conn: conn.execute(stmt).scalar_one())
        except IntegrityError as exc:
            raise DuplicateMobile(mobile) from exc
        return UserRow(id=user_id, **values)  # type: ignore[arg-type]

    async def get(self, user_id: int) -> UserRow | None:
        rows = await self._db.fetch(select(users).where(users.c.id == user_id))
        return _row(rows[0]) if rows else None

    async def get_many(self, user_ids: list[int]) -> list[UserRow]:
        if not user_ids:
            return []
        rows = await self._db.fetch(select(users).where(users.c.id.in_(user_ids)).order_by(users.c.id))
        return [_row(r) for r in rows]

    async def by_mobile(self, mobile: str) -> UserRow | None:
        rows = await self._db.fetch(select(users).where(users.c.mobile == mobile))
        return _row(rows[0]) if rows else None

    async def update_profile(self, user_id: int, **fields: Any) -> UserRow | None:
        allowed = {"nickname", "avatar", "sex", "memo"}
        values = {k: v for k, v in fields.items() if k in allowed and v is not None}
        if values:
            await self._db.execute(update(users).where(users.c.id == user_id).values(**values))
        return await self.get(user_id)

    async def set_password(self, user_id: int, passwd_hash: str) -> None:
        await self._db.execute(update(users).where(users.c.id == user_id).values(passwd=passwd_hash))

    async def set_banned(self, user_id: int, banned: bool) -> None:
        await self._db.execute(update(users).where(users.c.id == user_id).values(banned=banned))

    async def touch_last_seen(self, seen: dict[int, int]) -> None:
        """Set ``last_seen`` (ms) of several users in one statement (user id -> when)."""
        if seen:
            await self._db.execute(_TOUCH_LAST_SEEN, [{"uid": u, "when": t} for u, t in seen.items()])

    # --- tokens --------------------------------------------------------------------

    async def add_token(self, user_id: int, token: str, ttl_seconds: int) -> None:
        now = now_ms()
        await self._db.execute(
            insert(tokens).values(
                token_hash=token_hash(token), user_id=user_id, created=now, expires=now + ttl_seconds * 1000
            )
        )

    async def user_for_token(self, token: str) -> int | None:
        """The user id owning an unexpired ``token``, else None."""
        return await self._db.read_rows(token_owner, token_hash(token), now_ms())

    async def revoke_token(self, token: str) -> None:
        await self._db.execute(delete(tokens).where(tokens.c.token_hash == token_hash(token)))

    async def revoke_all_tokens(self, user_id: int) -> None:
        await self._db.execute(delete(tokens).where(tokens.c.user_id == user_id))
