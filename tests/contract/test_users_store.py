"""UserStore contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from imhub.store.db import Database
from imhub.store.users import DuplicateMobile, UserStore


@pytest.fixture
async def users(db_url: str):
    db = Database(db_url)
    yield UserStore(db)
    await db.dispose()


async def test_create_and_get(users: UserStore) -> None:
    u = await users.create(mobile="13800000001", passwd_hash="h", nickname="alice")
    assert u.id > 0
    got = await users.get(u.id)
    assert got is not None and got.nickname == "alice" and got.mobile == "13800000001"
    assert (await users.by_mobile("13800000001")) == got


async def test_duplicate_mobile(users: UserStore) -> None:
    await users.create(mobile="13800000001", passwd_hash="h")
    with pytest.raises(DuplicateMobile):
        await users.create(mobile="13800000001", passwd_hash="h2")


async def test_tokens_hashed_and_revocable(users: UserStore) -> None:
    u = await users.create(mobile="13800000002", passwd_hash="h")
    await users.add_token(u.id, "secret-token", ttl_seconds=60)
    assert await users.user_for_token("secret-token") == u.id
    assert await users.user_for_token("other") is None
    await users.revoke_token("secret-token")
    assert await users.user_for_token("secret-token") is None


async def test_expired_token_refused(users: UserStore) -> None:
    u = await users.create(mobile="13800000003", passwd_hash="h")
    await users.add_token(u.id, "t", ttl_seconds=-1)
    assert await users.user_for_token("t") is None


async def test_update_profile_only_given_fields(users: UserStore) -> None:
    u = await users.create(mobile="13800000004", passwd_hash="h", nickname="old", memo="m")
    got = await users.update_profile(u.id, nickname="new", avatar=None, passwd="ignored")
    assert got is not None and got.nickname == "new" and got.memo == "m" and got.passwd == "h"
    assert await users.update_profile(u.id + 999, nickname="x") is None


async def test_get_many_and_password(users: UserStore) -> None:
    a = await users.create(mobile="13800000005", passwd_hash="h")
    b = await users.create(mobile="13800000006", passwd_hash="h")
    assert [u.id for u in await users.get_many([b.id, a.id, 99999])] == [a.id, b.id]
    assert await users.get_many([]) == []
    await users.set_password(a.id, "h2")
    assert (await users.get(a.id)).passwd == "h2"  # type: ignore[union-attr]


async def test_revoke_all_tokens_only_that_user(users: UserStore) -> None:
    a = await users.create(mobile="13800000007", passwd_hash="h")
    b = await users.create(mobile="13800000008", passwd_hash="h")
    for t in ("a1", "a2"):
        await users.add_token(a.id, t, ttl_seconds=60)
    await users.add_token(b.id, "b1", ttl_seconds=60)
    await users.revoke_all_tokens(a.id)
    assert await users.user_for_token("a1") is None and await users.user_for_token("a2") is None
    assert await users.user_for_token("b1") == b.id
