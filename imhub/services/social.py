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
from imhub.errors import ApiError, ErrorCode
from imhub.services.accounts import check_printable
from imhub.services.refusals import refuse
from imhub.store.groups import GroupAdminStore, SeqRange
from imhub.store.social import AlreadyFriends, GroupRow, SocialStore, TooManyGroups
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
# (users, cmd, body): a live event for these users' sockets (friend requests, join
# requests, invitations); the messaging layer publishes it on the bus.
EventListener = Callable[[tuple[int, ...], int, dict[str, object]], Awaitable[None]]

JOIN_POLICIES = ("open", "approval", "invite")
HISTORY_VISIBILITIES = ("joined", "shared")

GROUP_NAME_MAX = 64  # communities.name is String(64)
GROUP_TEXT_MAX = 512  # communities.icon / memo are String(512)


def check_group_settings(join_policy: str, history_visibility: str) -> None:
    if join_policy not in JOIN_POLICIES:
        raise refuse(ErrorCode.BAD_PARAM, "joinpolicy must be open, approval or invite")
    if history_visibility not in HISTORY_VISIBILITIES:
        raise refuse(ErrorCode.BAD_PARAM, "visibility must be joined or shared")


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
        self.groups_store = GroupAdminStore(store.db)
        self.membership_listeners: list[MembershipListener] = []
        self.group_change_listeners: list[GroupChangeListener] = []
        self.friendship_listeners: list[FriendshipListener] = []
        self.event_listeners: list[EventListener] = []

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

    async def visible_range(self, group_id: int, user_id: int) -> SeqRange | None:
        """The seqs of group ``group_id`` that ``user_id`` may read (None: none) — the
        one history-visibility rule every read path applies."""
        return await self.groups_store.visible_range(group_id, user_id)

    async def visible_ranges(self, group_ids: list[int], user_id: int) -> dict[int, SeqRange]:
        return await self.groups_store.visible_ranges(group_ids, user_id)

    # --- telling others ------------------------------------------------------------

    async def notify(self, users: tuple[int, ...], cmd: int, body: dict[str, object]) -> None:
        """A live event to ``users``' sockets (after the change committed)."""
        if users:
            await self._call_all(self.event_listeners, users, cmd, body)

    async def friendship_changed(self, a: int, b: int, added: bool) -> None:
        await self._call_all(self.friendship_listeners, a, b, added)

    async def announce(self, change: GroupChange) -> None:
        await self._changed(change)

    # --- friends -------------------------------------------------------------------

    async def befriend(self, user_id: int, dst_id: int) -> None:
        """Make the two users friends at once (mutual, one transaction). The consent
        rules (imhub.services.consent) decide when this may happen."""
        try:
            await self._store.add_friendship(user_id, dst_id)
        except AlreadyFriends:
            raise refuse(ErrorCode.ALREADY_FRIENDS, "you are already friends") from None
        await self._call_all(self.friendship_listeners, user_id, dst_id, True)

    async def remove_friend(self, user_id: int, dst_id: int) -> None:
        if not await self._store.remove_friendship(user_id, dst_id):
            raise refuse(ErrorCode.NOT_FRIENDS, "you are not friends")
        await self._call_all(self.friendship_listeners, user_id, dst_id, False)

    async def friends(self, user_id: int) -> list[UserRow]:
        ids = await self._store.friend_ids(user_id)
        by_id = {u.id: u for u in await self._users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id]

    # --- groups --------------------------------------------------------------------

    async def _group_or_fail(self, group_id: int) -> GroupRow:
        group = await self._store.get_group(group_id)
        if group is None:
            raise refuse(ErrorCode.UNKNOWN_GROUP, "no such group")
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
        self,
        ownerid: int,
        *,
        name: str,
        icon: str = "",
        cate: int = 0,
        memo: str = "",
        join_policy: str = "",
        history_visibility: str = "",
    ) -> GroupRow:
        """A new group; without a policy or visibility it gets the server's defaults
        (``IMHUB_GROUP_JOIN_POLICY``, ``IMHUB_GROUP_HISTORY_VISIBILITY``)."""
        join_policy = join_policy or self._settings.group_join_policy
        history_visibility = history_visibility or self._settings.group_history_visibility
        check_group_settings(join_policy, history_visibility)
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
                ownerid=ownerid, name=validate_group_name(name), icon=icon, cate=cate, memo=memo, max_owned=limit,
                join_policy=join_policy, history_visibility=history_visibility,
            )
        except TooManyGroups:
            raise refuse(ErrorCode.TOO_MANY_GROUPS, f"you already own {limit} groups, the most allowed") from None
        await self._changed(GroupChange(group.id, "created", ownerid, ownerid, group.name))
        return group

    async def leave(self, user_id: int, group_id: int) -> None:
        group = await self._group_or_fail(group_id)
        if group.ownerid == user_id:
            raise refuse(ErrorCode.OWNER_FIXED, "the owner cannot leave the group")
        if not await self._store.remove_member(group_id, user_id):
            raise refuse(ErrorCode.NOT_MEMBER, "you are not a member of this group", status=200)
        await self._changed(GroupChange(group_id, "left", user_id, user_id))

    async def groups_of(self, user_id: int) -> list[GroupRow]:
        return await self._store.groups_of(user_id)

    async def members(self, user_id: int, group_id: int) -> list[UserRow]:
        """Members of a group, for one of its members (owner first)."""
        await self._group_or_fail(group_id)
        ids = await self._store.member_ids(group_id)
        if user_id not in ids:
            raise refuse(ErrorCode.NOT_MEMBER, "only members may list a group's members")
        by_id = {u.id: u for u in await self._users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id]

    async def _owned_group(self, user_id: int, group_id: int) -> GroupRow:
        group = await self._group_or_fail(group_id)
        if group.ownerid != user_id:
            raise refuse(ErrorCode.ROLE_REQUIRED, "only the group owner may do this")
        return group

    async def rename(self, user_id: int, group_id: int, name: str) -> GroupRow:
        await self._owned_group(user_id, group_id)
        group = await self._store.rename_group(group_id, validate_group_name(name))
        if group is None:
            raise refuse(ErrorCode.UNKNOWN_GROUP, "no such group")
        await self._changed(GroupChange(group_id, "renamed", user_id, user_id, group.name))
        return group
