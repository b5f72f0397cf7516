"""SocialStore contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imhub.store.db import Database
from imhub.store.handshake import HandshakeReader, open_session
from imhub.store.social import AlreadyFriends, AlreadyMember, GroupRow, SocialStore, TooManyGroups, circles_of
from imhub.store.users import UserStore


@pytest.fixture
async def env(db_url: str):
    db = Database(db_url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"1380000000{i}", passwd_hash="h")).id for i in range(4)]
    yield SocialStore(db), ids
    await db.dispose()


async def test_friendship_is_mutual(env) -> None:
    store, (a, b, c, _) = env
    await store.add_friendship(a, b)
    assert await store.are_friends(a, b) and await store.are_friends(b, a)
    assert not await store.are_friends(a, c)
    assert await store.friend_ids(a) == [b]
    assert await store.friend_ids(b) == [a]
    assert await store.friend_ids(c) == []


async def test_duplicate_friendship_either_direction(env) -> None:
    store, (a, b, _, _) = env
    await store.add_friendship(a, b)
    with pytest.raises(AlreadyFriends):
        await store.add_friendship(a, b)
    with pytest.raises(AlreadyFriends):
        await store.add_friendship(b, a)
    assert await store.friend_ids(a) == [b] and await store.friend_ids(b) == [a]


async def test_half_friendship_rolls_back(env) -> None:
    """If one direction already exists the other must not be written alone."""
    store, (a, b, _, _) = env
    from sqlalchemy import insert

    from imhub.store.tables import contacts

    await store._db.execute(insert(contacts).values(owner_id=b, dst_id=a, created=1))
    with pytest.raises(AlreadyFriends):
        await store.add_friendship(a, b)
    assert await store.friend_ids(a) == []


async def test_remove_friendship(env) -> None:
    store, (a, b, _, _) = env
    await store.add_friendship(a, b)
    assert await store.remove_friendship(b, a)
    assert not await store.are_friends(a, b) and not await store.are_friends(b, a)
    assert not await store.remove_friendship(a, b)


async def test_create_group_owner_is_member(env) -> None:
    store, (a, _, _, _) = env
    g = await store.create_group(ownerid=a, name="g1", icon="/i.png", cate=2, memo="m")
    assert isinstance(g, GroupRow) and g.id > 0 and g.ownerid == a and g.cate == 2
    assert await store.get_group(g.id) == g
    assert await store.is_member(g.id, a)
    assert await store.member_ids(g.id) == [a]
    assert await store.group_ids_of(a) == [g.id]
    assert await store.get_group(g.id + 1000) is None


async def test_group_limit_per_owner(env) -> None:
    store, (a, b, _, _) = env
    for i in range(2):
        await store.create_group(ownerid=a, name=f"g{i}", max_owned=2)
    with pytest.raises(TooManyGroups):
        await store.create_group(ownerid=a, name="third", max_owned=2)
    assert await store.count_owned(a) == 2
    # The limit is per owner.
    await store.create_group(ownerid=b, name="b's", max_owned=2)


async def test_members_join_and_leave(env) -> None:
    store, (a, b, c, d) = env
    g = await store.create_group(ownerid=a, name="g")
    await store.add_member(g.id, b)
    await asyncio.sleep(0.002)  # distinct join times, so the order is defined
    await store.add_member(g.id, c)
    with pytest.raises(AlreadyMember):
        await store.add_member(g.id, b)
    assert await store.member_ids(g.id) == [a, b, c]
    assert await store.is_member(g.id, b) and not await store.is_member(g.id, d)
    assert await store.remove_member(g.id, b)
    assert not await store.remove_member(g.id, b)
    assert await store.member_ids(g.id) == [a, c]
    assert await store.group_ids_of(b) == []


async def test_groups_of_and_rename(env) -> None:
    store, (a, b, _, _) = env
    g1 = await store.create_group(ownerid=a, name="one")
    g2 = await store.create_group(ownerid=b, name="two")
    await store.add_member(g2.id, a)
    assert [g.id for g in await store.groups_of(a)] == [g1.id, g2.id]
    assert sorted(await store.group_ids_of(a)) == sorted([g1.id, g2.id])
    renamed = await store.rename_group(g1.id, "uno")
    assert renamed is not None and renamed.name == "uno" and renamed.ownerid == a
    assert (await store.get_group(g1.id)).name == "uno"  # type: ignore[union-attr]


async def test_circles_are_groups_and_friends(env) -> None:
    store, (a, b, c, _) = env
    await store.add_friendship(a, b)
    await store.add_friendship(a, c)
    g = await store.create_group(ownerid=a, name="g")
    await store.add_member(g.id, b)
    db = store._db
    assert await db.read_rows(circles_of, a) == ([g.id], [b, c])
    assert await db.read_rows(circles_of, b) == ([g.id], [a])
    assert await db.read_rows(circles_of, c) == ([], [a])


async def test_open_session_reads_token_groups_and_friends_at_once(env) -> None:
    """The handshake's one read (imhub.store.handshake): the token's owner with their
    groups and friends; None for an unknown, expired or revoked token."""
    store, (a, b, c, _) = env
    users = UserStore(store._db)
    await users.add_token(a, "tok-a", ttl_seconds=60)
    await users.add_token(b, "tok-b-expired", ttl_seconds=-1)
    await store.add_friendship(a, b)
    await store.add_friendship(a, c)
    g1 = await store.create_group(ownerid=b, name="g1")
    g2 = await store.create_group(ownerid=a, name="g2")
    await store.add_member(g1.id, a)
    opening = await open_session(store._db, "tok-a")
    assert opening is not None and opening.user_id == a
    assert opening.group_ids == sorted([g1.id, g2.id])
    assert sorted(opening.friend_ids) == sorted([b, c])
    assert await open_session(store._db, "tok-b-expired") is None
    assert await open_session(store._db, "no-such-token") is None
    await users.revoke_token("tok-a")
    assert await open_session(store._db, "tok-a") is None


class ReadCounter:
    """Counts the database's ``read_rows`` calls (one per read transaction)."""

    def __init__(self, db: Any) -> None:
        self.n = 0
        self._read_rows = db.read_rows
        db.read_rows = self._counting

    async def _counting(self, *args: object) -> object:
        self.n += 1
        return await self._read_rows(*args)


async def test_handshakes_arriving_together_are_read_in_one_transaction(env) -> None:
    """HandshakeReader: concurrent handshakes get each their own answer from one read."""
    store, (a, b, c, _) = env
    users = UserStore(store._db)
    await users.add_token(a, "tok-a", ttl_seconds=60)
    await users.add_token(c, "tok-c", ttl_seconds=60)
    await users.add_token(b, "tok-b-expired", ttl_seconds=-1)
    await store.add_friendship(a, c)
    reads = ReadCounter(store._db)
    reader = HandshakeReader(store._db)
    found = await asyncio.gather(*(reader.open(t) for t in ("tok-a", "nope", "tok-b-expired", "tok-c")))
    assert reads.n == 1
    assert [o.user_id if o else None for o in found] == [a, None, None, c]
    assert found[0] is not None and found[0].friend_ids == [c]
    assert await reader.open("tok-c") is not None and reads.n == 2


async def test_friends_reads_asked_together_share_one_transaction(env) -> None:
    """friend_ids (every last disconnect asks it): concurrent asks get each their own
    answer from one read; an ask after a write sees the write."""
    store, (a, b, c, d) = env
    await store.add_friendship(a, b)
    await store.add_friendship(a, c)
    await store.add_friendship(c, d)
    reads = ReadCounter(store._db)
    found = await asyncio.gather(*(store.friend_ids(u) for u in (a, b, c, d, a)))
    assert reads.n == 1
    assert [sorted(f) for f in found] == [sorted([b, c]), [a], sorted([a, d]), [c], sorted([b, c])]
    await store.add_friendship(b, d)
    assert sorted(await store.friend_ids(d)) == sorted([b, c]) and reads.n == 2
