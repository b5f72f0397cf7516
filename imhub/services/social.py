"""Social graph rules: friends and groups.

The store answers questions and writes rows; this layer decides who may do what and
turns every refusal into an :class:`ApiError` with a message a user can read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from imhub.config import Settings
from imhub.domain.urls import media_ref_problem
from imhub.errors import ApiError, Forbidden
from imhub.services.accounts import check_printable
from imhub.store.social import AlreadyFriends, AlreadyMember, GroupRow, SocialStore, TooManyGroups
from imhub.store.users import UserRow, UserStore

log = structlog.get_logger("imhub.social")

# Called after a membership change commits: (group_id, user_id, joined). The messaging
# layer registers one so a live connection starts (or stops) receiving the group at once.
MembershipListener = Callable[[int, int, bool], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class GroupChange:
    """Something happened to a group that its members should see in the stream.
    ``kind``: created, joined, left, removed, renamed; ``actor`` did it to ``subject``."""

    group_id: int
    kind: str
    actor: int
    subject: int
    name: str = ""


GroupChangeListener = Callable[[GroupChange], Awaitable[None]]
# (a, b, added): a friendship was made or ended (after commit).
FriendshipListener = Callable[[int, int, bool], Awaitable[None]]

GROUP_NAME_MAX = 64  # communities.name is String(64)
GROUP_TEXT_MAX = 512  # communities.icon / memo are String(512)


def validate_group_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ApiError("name is required")
    if len(name) > GROUP_NAME_MAX:
        raise ApiError(f"name is too long (at most {GROUP_NAME_MAX} characters)")
    return check_printable(name, "name")


class SocialService:
    def __init__(self, settings: Settings, users: UserStore, store: SocialStore) -> None:
        self._settings = settings
        self._users = users
        self._store = store
        self.membership_listeners: list[MembershipListener] = []
        self.group_change_listeners: list[GroupChangeListener] = []
        self.friendship_listeners: list[FriendshipListener] = []

    # --- questions other layers ask (delegated to the store) ------------------------

    async def are_friends(self, a: int, b: int) -> bool:
        return await self._store.are_friends(a, b)

    async def friend_ids(self, user_id: int) -> list[int]:
        return await self._store.friend_ids(user_id)

    async def is_member(self, group_id: int, user_id: int) -> bool:
        return await self._store.is_member(group_id, user_id)

    async def member_ids(self, group_id: int) -> list[int]:
        return await self._store.member_ids(group_id)

    async def group_ids_of(self, user_id: int) -> list[int]:
        return await self._store.group_ids_of(user_id)

    async def get_group(self, group_id: int) -> GroupRow | None:
        return await self._store.get_group(group_id)

    # --- friends -------------------------------------------------------------------

    async def add_friend(self, user_id: int, dst_id: int) -> UserRow:
        """Make the two users friends (mutual, one transaction); returns the friend."""
        if dst_id == user_id:
            raise ApiError("you cannot add yourself as a friend")
        friend = await self._users.get(dst_id)
        if friend is None:
            raise ApiError("no such user")
        try:
            await self._store.add_friendship(user_id, dst_id)
        except AlreadyFriends:
            raise ApiError("you are already friends") from None
        await self._call_all(self.friendship_listeners, user_id, dst_id, True)
        return friend

    async def remove_friend(self, user_id: int, dst_id: int) -> None:
        if not await self._store.remove_friendship(user_id, dst_id):
            raise ApiError("you are not friends")
        await self._call_all(self.friendship_listeners, user_id, dst_id, False)

    async def friends(self, user_id: int) -> list[UserRow]:
        ids = await self._store.friend_ids(user_id)
        by_id = {u.id: u for u in await self._users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id]

    # --- groups --------------------------------------------------------------------

    async def _group_or_fail(self, group_id: int) -> GroupRow:
        group = await self._store.get_group(group_id)
        if group is None:
            raise ApiError("no such group")
        return group

    @staticmethod
    async def _call_all(listeners: list[Callable[..., Awaitable[None]]], *args: object) -> None:
        # The change is committed; a failing listener must not turn it into an error
        # for the caller (clients resync), so log and carry on with the others.
        for listener in list(listeners):
            try:
                await listener(*args)
            except Exception:
                log.exception("social listener failed", args=args)

    async def _changed(self, change: GroupChange) -> None:
        """Tell listeners, in the order that lets the subject see their own event: a
        joiner is routed the group before the event; a leaver gets it before leaving."""
        if change.kind in ("created", "joined"):
            await self._call_all(self.membership_listeners, change.group_id, change.subject, True)
            await self._call_all(self.group_change_listeners, change)
        elif change.kind in ("left", "removed"):
            await self._call_all(self.group_change_listeners, change)
            await self._call_all(self.membership_listeners, change.group_id, change.subject, False)
        else:
            await self._call_all(self.group_change_listeners, change)

    async def create_group(
        self, ownerid: int, *, name: str, icon: str = "", cate: int = 0, memo: str = ""
    ) -> GroupRow:
        if len(icon) > GROUP_TEXT_MAX or len(memo) > GROUP_TEXT_MAX:
            raise ApiError(f"icon and memo are at most {GROUP_TEXT_MAX} characters")
        check_printable(icon, "icon")
        # Drawn as <img src> for every member: this server's media only (domain/urls.py).
        problem = media_ref_problem(icon, "icon", self._settings.media_base_url)
        if problem:
            raise ApiError(problem)
        check_printable(memo, "memo", multiline=True)
        if not 0 <= cate <= 2**31 - 1:
            raise ApiError("cate is out of range")
        limit = self._settings.max_groups_per_owner
        try:
            group = await self._store.create_group(
                ownerid=ownerid, name=validate_group_name(name), icon=icon, cate=cate, memo=memo, max_owned=limit
            )
        except TooManyGroups:
            raise ApiError(f"you already own {limit} groups, the most allowed") from None
        await self._changed(GroupChange(group.id, "created", ownerid, ownerid, group.name))
        return group

    async def join(self, user_id: int, group_id: int) -> GroupRow:
        group = await self._group_or_fail(group_id)
        try:
            await self._store.add_member(group_id, user_id)
        except AlreadyMember:
            raise ApiError("you are already a member of this group") from None
        await self._changed(GroupChange(group_id, "joined", user_id, user_id))
        return group

    async def leave(self, user_id: int, group_id: int) -> None:
        group = await self._group_or_fail(group_id)
        if group.ownerid == user_id:
            raise ApiError("the owner cannot leave the group")
        if not await self._store.remove_member(group_id, user_id):
            raise ApiError("you are not a member of this group")
        await self._changed(GroupChange(group_id, "left", user_id, user_id))

    async def groups_of(self, user_id: int) -> list[GroupRow]:
        return await self._store.groups_of(user_id)

    async def members(self, user_id: int, group_id: int) -> list[UserRow]:
        """Members of a group, for one of its members (owner first)."""
        await self._group_or_fail(group_id)
        ids = await self._store.member_ids(group_id)
        if user_id not in ids:
            raise Forbidden("only members may list a group's members")
        by_id = {u.id: u for u in await self._users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id]

    async def _owned_group(self, user_id: int, group_id: int) -> GroupRow:
        group = await self._group_or_fail(group_id)
        if group.ownerid != user_id:
            raise Forbidden("only the group owner may do this")
        return group

    async def rename(self, user_id: int, group_id: int, name: str) -> GroupRow:
        await self._owned_group(user_id, group_id)
        group = await self._store.rename_group(group_id, validate_group_name(name))
        if group is None:
            raise ApiError("no such group")
        await self._changed(GroupChange(group_id, "renamed", user_id, user_id, group.name))
        return group

    async def remove_member(self, user_id: int, group_id: int, member_id: int) -> None:
        """The owner removes ``member_id`` (not themself: an owner cannot leave)."""
        await self._owned_group(user_id, group_id)
        if member_id == user_id:
            raise ApiError("the owner cannot be removed from the group")
        if not await self._store.remove_member(group_id, member_id):
            raise ApiError("that user is not a member of this group")
        await self._changed(GroupChange(group_id, "removed", user_id, member_id))
