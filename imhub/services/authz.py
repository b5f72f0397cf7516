"""Who may send to, and read, a conversation — with the caches that keep the chat path
off the database.

Positive answers are cached: a friendship for up to :data:`FRIEND_CACHE_SECONDS`, a
membership until it ends. Endings reach every process through the bus (the gateway
node turns :class:`~imhub.bus.base.Membership` and :class:`~imhub.bus.base.Unfriended`
controls into :meth:`Authorizer.member_left` / :meth:`Authorizer.forget_friendship`);
the friendship expiry is the fallback should such a control be lost in a bus outage.
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

Pair = tuple[int, int]


def friend_cache_expiry(now: float) -> float:
    """Spread over the second half of the lifetime: pairs cached together (every friend
    of a user at their handshake) must not all be read again in the same instant."""
    return now + FRIEND_CACHE_SECONDS * random.uniform(0.5, 1.0)


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


class Authorizer:
    def __init__(self, social: SocialService, users: UserStore) -> None:
        self._social = social
        self._users = users
        # pair -> monotonic time until which the friendship is trusted without asking
        self._friends: dict[Pair, float] = {}
        self._members: set[tuple[int, int]] = set()  # (group, user)

    # --- what the gateway node tells it --------------------------------------------

    def trust_friends(self, user_id: int, friend_ids: list[int]) -> None:
        """The handshake read these friends: their first messages need no friendship
        query (which made the first second of a chat burst ~300 ms slow)."""
        self._trust([pair(user_id, f) for f in friend_ids], time.monotonic())

    def forget_friendship(self, a: int, b: int) -> None:
        self._friends.pop(pair(a, b), None)

    def member_joined(self, group_id: int, user_id: int) -> None:
        self._members.add((group_id, user_id))

    def member_left(self, group_id: int, user_id: int) -> None:
        self._members.discard((group_id, user_id))

    def _trust(self, pairs: list[Pair], now: float) -> None:
        """Bounded by starting over when full."""
        if len(self._friends) + len(pairs) > FRIEND_CACHE_MAX:
            self._friends.clear()
        for p in pairs:
            self._friends[p] = friend_cache_expiry(now)

    # --- questions -----------------------------------------------------------------

    async def may_send(self, d: Draft) -> None:
        """Raises :class:`Refused` unless ``d``'s sender may send to its target."""
        if d.cmd == Cmd.PRIVATE:
            p = pair(d.userid, d.dstid)
            # Not the loop's clock: asyncio.get_running_loop() costs a getpid() syscall.
            now = time.monotonic()
            if self._friends.get(p, 0.0) > now:
                return
            if await self._social.are_friends(d.userid, d.dstid):
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
        if key in self._members:
            return True
        if await self._social.is_member(group_id, user_id):
            self._members.add(key)
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
