"""ConsentStore and GroupAdminStore contracts, on SQLite and PostgreSQL: a request is
decided once (of two racing deciders one wins), accepting writes the friendship in the
same transaction, and the visibility ranges follow join/leave seqs."""

from __future__ import annotations

import asyncio

import pytest

from imhub.store.consent import ConsentStore, RequestNotPending
from imhub.store.db import Database
from imhub.store.groups import NO_END, GroupAdminStore, SeqRange
from imhub.store.social import SocialStore
from imhub.store.users import UserStore


@pytest.fixture
async def env(db_url: str):
    db = Database(db_url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"1370000000{i}", passwd_hash="h")).id for i in range(3)]
    yield db, ids
    await db.dispose()


async def test_a_request_is_decided_once(env) -> None:
    db, (a, b, _) = env
    store, social = ConsentStore(db), SocialStore(db)
    req = await store.create_request(a, b, "hi", ttl_ms=60_000)
    results = await asyncio.gather(
        store.decide(req.id, "accepted", befriend=True), store.decide(req.id, "cancelled"), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1 and all(isinstance(r, RequestNotPending) for r in results if r not in winners)
    assert await social.are_friends(a, b) == (winners[0].status == "accepted")
    assert (await store.get_request(req.id)).status == winners[0].status  # type: ignore[union-attr]


async def test_accepting_settles_the_request_the_other_way(env) -> None:
    db, (a, b, _) = env
    store = ConsentStore(db)
    mine = await store.create_request(a, b, "", ttl_ms=60_000)
    theirs = await store.create_request(b, a, "", ttl_ms=60_000)
    await store.decide(mine.id, "accepted", befriend=True)
    assert (await store.get_request(theirs.id)).status == "accepted"  # type: ignore[union-attr]
    with pytest.raises(RequestNotPending):
        await store.decide(theirs.id, "declined")


async def test_visible_ranges_follow_join_and_leave(env) -> None:
    db, (owner, member, stranger) = env
    social, admin = SocialStore(db), GroupAdminStore(db)
    joined = await social.create_group(ownerid=owner, name="j", history_visibility="joined")
    shared = await social.create_group(ownerid=owner, name="s", history_visibility="shared")
    # Pretend each group has 5 messages before the member joins.
    from sqlalchemy import insert

    from imhub.store.tables import conversations

    await db.execute(insert(conversations), [{"conv": f"g{g.id}", "last_seq": 5} for g in (joined, shared)])
    assert await social.add_member(joined.id, member) == 5
    await social.add_member(shared.id, member)
    ranges = await admin.visible_ranges([joined.id, shared.id], member)
    assert ranges == {joined.id: SeqRange(5, NO_END), shared.id: SeqRange(0, NO_END)}
    assert 6 in ranges[joined.id] and 5 not in ranges[joined.id]
    assert await admin.visible_ranges([joined.id], stranger) == {}
    assert await admin.visible_range(joined.id, owner) == SeqRange(0, NO_END)
    await db.execute(conversations.update().values(last_seq=9))
    assert await social.remove_member(joined.id, member)
    assert await admin.visible_range(joined.id, member) == SeqRange(5, 9)
    # Rejoining starts over from the new join.
    assert await social.add_member(joined.id, member) == 9
    assert await admin.visible_range(joined.id, member) == SeqRange(9, NO_END)
