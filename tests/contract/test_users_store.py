"""UserStore contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from imhub.store.engine import create_engine
from imhub.store.users import DuplicateMobile, UserStore


@pytest.fixture
async def users(db_url: str):
    engine = create_engine(db_url)
    yield UserStore(engine)
    await engine.dispose()


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
