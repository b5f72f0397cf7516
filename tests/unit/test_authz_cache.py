"""The authorization caches (imhub.services.authz): expiry, eviction, and no caching
of a database answer that an ending overtook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imhub.domain.model import Cmd, Draft
from imhub.errors import ErrorCode, Refused
from imhub.services import authz
from imhub.services.authz import Authorizer


class FakeSocial:
    """Answers from sets; counts the questions; ``gate`` holds the next answer."""

    def __init__(self) -> None:
        self.members: set[tuple[int, int]] = set()
        self.friends: set[tuple[int, int]] = set()
        self.asked = 0
        self.gate: asyncio.Event | None = None

    async def _wait(self) -> None:
        self.asked += 1
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()

    async def is_member(self, group_id: int, user_id: int) -> bool:
        answer = (group_id, user_id) in self.members  # read before the wait, as a query would
        await self._wait()
        return answer

    async def are_friends(self, a: int, b: int) -> bool:
        answer = authz.pair(a, b) in self.friends
        await self._wait()
        return answer

    async def get_group(self, group_id: int) -> Any:
        return object()


class FakeUsers:
    async def get(self, user_id: int) -> Any:
        return object()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(authz.time, "monotonic", c)
    return c


def make() -> tuple[Authorizer, FakeSocial]:
    social = FakeSocial()
    return Authorizer(social, FakeUsers()), social  # type: ignore[arg-type]


def to_group(user: int, group: int) -> Draft:
    return Draft(userid=user, cmd=Cmd.GROUP, dstid=group, media=1, content="x")


def to_user(user: int, dst: int) -> Draft:
    return Draft(userid=user, cmd=Cmd.PRIVATE, dstid=dst, media=1, content="x")


async def test_a_membership_is_trusted_for_a_while_then_read_again(clock: Clock) -> None:
    a, social = make()
    social.members.add((9, 1))
    assert await a.is_member(9, 1)
    assert await a.is_member(9, 1)
    assert social.asked == 1
    social.members.clear()  # removed, and the control was lost
    clock.now += authz.MEMBER_CACHE_SECONDS
    assert not await a.is_member(9, 1)
    with pytest.raises(Refused) as refused:
        await a.may_send(to_group(1, 9))
    assert refused.value.code is ErrorCode.NOT_MEMBER


async def test_a_handshake_membership_expires_too(clock: Clock) -> None:
    a, social = make()
    a.member_joined(9, 1)
    assert await a.is_member(9, 1) and social.asked == 0
    clock.now += authz.MEMBER_CACHE_SECONDS
    assert not await a.is_member(9, 1) and social.asked == 1


async def test_a_leave_and_an_outage_evict(clock: Clock) -> None:
    a, _ = make()
    a.member_joined(9, 1)
    a.member_left(9, 1)
    assert not await a.is_member(9, 1)
    a.member_joined(9, 1)
    a.trust_friends(1, [2])
    a.forget_all()
    assert not await a.is_member(9, 1)
    with pytest.raises(Refused) as refused:
        await a.may_send(to_user(1, 2))
    assert refused.value.code is ErrorCode.NOT_FRIEND


async def test_a_membership_read_across_a_leave_is_not_cached(clock: Clock) -> None:
    """The query saw the member; the leave arrived before its answer: the answer
    stands for this one check, but must not outlive the leave in the cache."""
    a, social = make()
    social.members.add((9, 1))
    gate = social.gate = asyncio.Event()
    check = asyncio.create_task(a.is_member(9, 1))
    await asyncio.sleep(0)  # the query has read its answer and waits
    social.members.clear()
    a.member_left(9, 1)
    gate.set()
    assert await check
    assert not await a.is_member(9, 1)
    assert social.asked == 2


async def test_a_friendship_read_across_an_unfriending_is_not_cached(clock: Clock) -> None:
    a, social = make()
    social.friends.add((1, 2))
    gate = social.gate = asyncio.Event()
    send = asyncio.create_task(a.may_send(to_user(1, 2)))
    await asyncio.sleep(0)
    social.friends.clear()
    a.forget_friendship(2, 1)
    gate.set()
    await send  # this one was checked before the unfriending committed
    with pytest.raises(Refused) as refused:
        await a.may_send(to_user(1, 2))
    assert refused.value.code is ErrorCode.NOT_FRIEND


async def test_an_unrelated_read_is_cached(clock: Clock) -> None:
    a, social = make()
    social.members.add((9, 1))
    assert await a.is_member(9, 1)
    assert await a.is_member(9, 1)
    assert social.asked == 1


async def test_the_membership_cache_is_bounded(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authz, "MEMBER_CACHE_MAX", 3)
    a, _ = make()
    for g in range(1, 4):
        a.member_joined(g, 1)
    assert len(a._members) == 3
    a.member_joined(3, 1)  # already there: kept
    assert len(a._members) == 3
    a.member_joined(4, 1)  # full: starts over
    assert len(a._members) == 1


async def test_the_cached_answer_without_an_await_follows_the_endings(clock: Clock) -> None:
    """may_send_cached (the chat path's answer with no task) says yes only while the
    cache does: never before a check, never after an unfriending, a leave, an outage
    or the expiry."""
    a, social = make()
    social.friends.add((1, 2))
    social.members.add((9, 1))
    assert not a.may_send_cached(to_user(1, 2)) and not a.may_send_cached(to_group(1, 9))
    await a.may_send(to_user(1, 2))
    await a.may_send(to_group(1, 9))
    assert a.may_send_cached(to_user(1, 2)) and a.may_send_cached(to_user(2, 1))
    assert a.may_send_cached(to_group(1, 9))
    assert not a.may_send_cached(to_user(1, 3)) and not a.may_send_cached(to_group(2, 9))
    a.forget_friendship(2, 1)  # the Unfriended control (unfriend or block)
    a.member_left(9, 1)
    assert not a.may_send_cached(to_user(1, 2)) and not a.may_send_cached(to_group(1, 9))
    a.trust_friends(1, [2])
    a.member_joined(9, 1)
    a.forget_all()
    assert not a.may_send_cached(to_user(1, 2)) and not a.may_send_cached(to_group(1, 9))
    a.trust_friends(1, [2])
    clock.now += authz.FRIEND_CACHE_SECONDS + 1
    assert not a.may_send_cached(to_user(1, 2))
