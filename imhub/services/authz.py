"""Who may send to, and read, a conversation — with the caches that keep the chat path
off the database.

Positive answers are cached: a friendship for up to :data:`FRIEND_CACHE_SECONDS`, a
membership for up to :data:`MEMBER_CACHE_SECONDS`. Endings reach every process through
the bus, also those holding no socket of the users (a process caches what any of its
sockets asked: the Redis bus sends leaves and unfriendings on a channel every process
listens to); the gateway node turns :class:`~imhub.bus.base.Membership` and
:class:`~imhub.bus.base.Unfriended` controls into :meth:`Authorizer.member_left` /
:meth:`Authorizer.forget_friendship`, and an outage of the bus into
:meth:`Authorizer.forget_all`. The expiries are the fallback should a control be lost
all the same. An answer read from the database while an ending arrived is not cached
(it may predate the ending): :attr:`Authorizer.epoch`.
"""

from __future__ import annotations

import random
import time

from imhub.domain.model import Cmd, Draft, parse_conv
from imhub.errors import ErrorCode, Refused
from imhub.services.social import SocialService
from imhub.store.users import UserStore

# How long a checked friendship is trusted for sending, and how many are kept. An
# unfriending whose control message was lost takes effect here within this time.
FRIEND_CACHE_SECONDS = 30.0
FRIEND_CACHE_MAX = 100_000
# The same for a checked membership (the handshake reads the user's groups afresh).
MEMBER_CACHE_SECONDS = 30.0
MEMBER_CACHE_MAX = 200_000

Pair = tuple[int, int]


def friend_cache_expiry(now: float) -> float:
    """Spread over the second half of the lifetime: pairs cached together (every friend
    of a user at their handshake) must not all be read again in the same instant."""
    return now + FRIEND_CACHE_SECONDS * random.uniform(0.5, 1.0)


def member_cache_expiry(now: float) -> float:
    """As :func:`friend_cache_expiry`, for memberships."""
    return now + MEMBER_CACHE_SECONDS * random.uniform(0.5, 1.0)


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


class Authorizer:
    def __init__(self, social: SocialService, users: UserStore) -> None:
        self._social = social
        self._users = users
        # pair -> monotonic time until which the friendship is trusted without asking
        self._friends: dict[Pair, float] = {}
        # (group, user) -> monotonic time until which the membership is trusted
        self._members: dict[tuple[int, int], float] = {}
        # Bumped by every forgetting: a database answer read across one is not cached.
        self.epoch = 0

    # --- what the gateway node tells it --------------------------------------------

    def trust_friends(self, user_id: int, friend_ids: list[int]) -> None:
        """The handshake read these friends: their first messages need no friendship
        query (which made the first second of a chat burst ~300 ms slow)."""
        self._trust([pair(user_id, f) for f in friend_ids], time.monotonic())

    def forget_friendship(self, a: int, b: int) -> None:
        self.epoch += 1
        self._friends.pop(pair(a, b), None)

    def member_joined(self, group_id: int, user_id: int) -> None:
        self._trust_member((group_id, user_id), time.monotonic())

    def member_left(self, group_id: int, user_id: int) -> None:
        self.epoch += 1
        self._members.pop((group_id, user_id), None)

    def forget_all(self) -> None:
        """The bus was down: any ending may have been lost. Everything is read again."""
        self.epoch += 1
        self._friends.clear()
        self._members.clear()

    def _trust_member(self, key: tuple[int, int], now: float) -> None:
        """Bounded by starting over when full."""
        if len(self._members) >= MEMBER_CACHE_MAX and key not in self._members:
            self._members.clear()
        self._members[key] = member_cache_expiry(now)

    def _trust(self, pairs: list[Pair], now: float) -> None:
        """Bounded by starting over when full."""
        if len(self._friends) + len(pairs) > FRIEND_CACHE_MAX:
            self._friends.clear()
        for p in pairs:
            self._friends[p] = friend_cache_expiry(now)

    # --- questions -----------------------------------------------------------------

    def may_send_cached(self, d: Draft) -> bool:
        """True when a cached answer lets ``d``'s sender send to its target now (no
        await, no query); False means "ask :meth:`may_send`", not "refused". Endings
        (unfriending, block, leave, bus outage) evict the cached answers first."""
        now = time.monotonic()
        if d.cmd == Cmd.PRIVATE:
            return self._friends.get(pair(d.userid, d.dstid), 0.0) > now
        return self._members.get((d.dstid, d.userid), 0.0) > now

    async def may_send(self, d: Draft) -> None:
        """Raises :class:`Refused` unless ``d``'s sender may send to its target."""
        if d.cmd == Cmd.PRIVATE:
            p = pair(d.userid, d.dstid)
            # Not the loop's clock: asyncio.get_running_loop() costs a getpid() syscall.
            now = time.monotonic()
            if self._friends.get(p, 0.0) > now:
                return
            epoch = self.epoch
            if await self._social.are_friends(d.userid, d.dstid):
                if epoch == self.epoch:
                    self._trust([p], now)
                return
            if await self._users.get(d.dstid) is None:
                raise Refused(ErrorCode.UNKNOWN_TARGET, f"no user {d.dstid}", cid=d.cid)
            raise Refused(ErrorCode.NOT_FRIEND, "you can only message friends", cid=d.cid)
        if await self.is_member(d.dstid, d.userid):
            return
        if await self._social.get_group(d.dstid) is None:
            raise Refused(ErrorCode.UNKNOWN_TARGET, f"no group {d.dstid}", cid=d.cid)
        raise Refused(ErrorCode.NOT_MEMBER, "you are not a member of this group", cid=d.cid)

    async def is_member(self, group_id: int, user_id: int) -> bool:
        key = (group_id, user_id)
        now = time.monotonic()
        if self._members.get(key, 0.0) > now:
            return True
        epoch = self.epoch
        if await self._social.is_member(group_id, user_id):
            if epoch == self.epoch:
                self._trust_member(key, now)
            return True
        return False

    async def audience(self, user_id: int, conv: str) -> tuple[tuple[int, ...], int]:
        """Who sees events of ``conv`` (users, group), after checking ``user_id`` is in it."""
        ref = parse_conv(conv)
        if ref is not None and ref.cmd == Cmd.PRIVATE and ref.includes_user(user_id):
            return (ref.a, ref.b), 0
        if ref is not None and ref.cmd == Cmd.GROUP and await self.is_member(ref.a, user_id):
            return (), ref.a
        raise Refused(ErrorCode.NOT_IN_CONVERSATION, f"you are not in conversation {conv}")
