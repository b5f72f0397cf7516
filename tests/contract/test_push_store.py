"""PushStore contract (Web Push subscriptions), run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from imhub.store.db import Database
from imhub.store.push import PushStore, Subscription
from imhub.store.social import SocialStore
from imhub.store.users import UserStore


@pytest.fixture
async def db(db_url: str):
    database = Database(db_url)
    yield database
    await database.dispose()


async def test_subscribe_move_cap_and_remove(db: Database) -> None:
    users, store = UserStore(db), PushStore(db)
    a = (await users.create(mobile="13800000001", passwd_hash="h")).id
    b = (await users.create(mobile="13800000002", passwd_hash="h")).id
    await store.subscribe(Subscription(a, "https://push.example/1", "k1", "s1"), 1, keep=2)
    await store.subscribe(Subscription(a, "https://push.example/2", "k2", "s2"), 2, keep=2)
    # The same endpoint again: updated in place (new keys), not a second row.
    await store.subscribe(Subscription(a, "https://push.example/1", "k1b", "s1b"), 3, keep=2)
    subs = sorted(await store.of_users([a]), key=lambda s: s.endpoint)
    assert [(s.endpoint, s.p256dh, s.auth) for s in subs] == [
        ("https://push.example/1", "k1b", "s1b"), ("https://push.example/2", "k2", "s2")
    ]
    # Over the cap: the oldest goes.
    await store.subscribe(Subscription(a, "https://push.example/3", "k3", "s3"), 4, keep=2)
    assert sorted(s.endpoint for s in await store.of_users([a])) == ["https://push.example/1", "https://push.example/3"]
    # A browser that logs in as another user moves its subscription.
    await store.subscribe(Subscription(b, "https://push.example/3", "k3", "s3"), 5, keep=2)
    assert [s.endpoint for s in await store.of_users([a])] == ["https://push.example/1"]
    assert [s.user_id for s in await store.of_users([b])] == [b]
    assert not await store.unsubscribe(a, "https://push.example/3")  # not a's any more
    assert await store.unsubscribe(b, "https://push.example/3")
    await store.remove("https://push.example/1")
    assert await store.of_users([a, b]) == []
    assert await store.of_users([]) == []


async def test_subscriptions_of_group_members(db: Database) -> None:
    users, store, social = UserStore(db), PushStore(db), SocialStore(db)
    a, b, c, d = [(await users.create(mobile=f"1380000001{i}", passwd_hash="h")).id for i in range(4)]
    g = await social.create_group(ownerid=a, name="g")
    await social.add_member(g.id, b)
    await social.add_member(g.id, c)
    for uid, n in ((a, 1), (b, 2), (b, 3), (d, 4)):  # c has none; d is not a member
        await store.subscribe(Subscription(uid, f"https://push.example/{n}", "k", "s"), n, keep=5)
    subs = await store.of_group_members(g.id, but=a)
    assert sorted((s.user_id, s.endpoint) for s in subs) == [
        (b, "https://push.example/2"),
        (b, "https://push.example/3"),
    ]
    assert sorted(s.user_id for s in await store.of_group_members(g.id)) == [a, b, b]
    assert await store.of_group_members(g.id + 1000) == []
