"""Group membership rules: join policies, roles, join requests, invitations, bans and
the group size limit.

- ``open``: anyone with the group id joins (the seed's behaviour);
- ``approval``: joining files a request that an owner or admin approves (cmd 42 to
  them, live), unless the user holds an invitation;
- ``invite``: only with an invitation — to the user by an owner/admin, or a link
  (random token, expiry, revocable).

A removed member is banned: no route lets them back in until an owner or admin lifts
the ban. Owners promote admins; admins remove members, approve joins, invite.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import Cmd
from imhub.errors import ErrorCode
from imhub.ratelimit import SlidingWindowLimiter
from imhub.services.consent import PER_ADDRESS_FACTOR
from imhub.services.refusals import rate_limited, refuse
from imhub.services.social import GroupChange, SocialService, check_group_settings
from imhub.store.groups import AlreadyRequested, GroupAdminStore, Invite
from imhub.store.social import AlreadyMember, GroupFull, GroupRow, SocialStore
from imhub.store.users import UserRow, UserStore

ADMINS = ("owner", "admin")
OWNER = ("owner",)
MAX_INVITE_TTL_SECONDS = 365 * 24 * 3600


def invite_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_json(inv: Invite) -> dict[str, object]:
    return {
        "id": inv.id, "groupid": inv.group_id, "inviteeid": inv.invitee_id or 0, "createdby": inv.created_by,
        "created": inv.created, "expires": inv.expires, "revoked": inv.revoked, "uses": inv.uses, "link": inv.link,
    }


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    group: GroupRow
    joined: bool  # False: a join request was filed


class GroupService:
    def __init__(
        self, settings: Settings, users: UserStore, store: SocialStore, admin: GroupAdminStore, social: SocialService
    ) -> None:
        self._settings = settings
        self._users = users
        self._store = store
        self._admin = admin
        self._social = social
        self.join_limiter_user = SlidingWindowLimiter(settings.group_joins_per_hour, 3600)
        self.join_limiter_ip = SlidingWindowLimiter(settings.group_joins_per_hour * PER_ADDRESS_FACTOR, 3600)
        self.invite_limiter_user = SlidingWindowLimiter(settings.invites_per_hour, 3600)
        self.invite_limiter_ip = SlidingWindowLimiter(settings.invites_per_hour * PER_ADDRESS_FACTOR, 3600)
        # Told after a member's role changed: (group, member, role, actor). Must not block.
        self.role_listeners: list[Callable[[int, int, str, int], None]] = []

    # --- helpers -------------------------------------------------------------------

    @staticmethod
    def _limit(user_limiter: SlidingWindowLimiter, ip_limiter: SlidingWindowLimiter, user_id: int, ip: str,
               what: str) -> None:
        wait = max(user_limiter.retry_after(user_id), ip_limiter.retry_after(ip))
        if wait > 0:
            raise rate_limited(f"too many {what}, try again later", wait)
        user_limiter.hit(user_id)
        ip_limiter.hit(ip)

    async def _group(self, group_id: int) -> GroupRow:
        group = await self._store.get_group(group_id)
        if group is None:
            raise refuse(ErrorCode.UNKNOWN_GROUP, "no such group")
        return group

    async def _require(self, actor: int, group_id: int, roles: tuple[str, ...]) -> tuple[GroupRow, str]:
        """The group and the actor's role, if the actor has one of ``roles``."""
        group = await self._group(group_id)
        role = await self._admin.role_of(group_id, actor)
        if role is None:
            raise refuse(ErrorCode.NOT_MEMBER, "you are not a member of this group")
        if role not in roles:
            who = "the group owner" if roles == OWNER else "the group owner or an admin"
            raise refuse(ErrorCode.ROLE_REQUIRED, f"only {who} may do this")
        return group, role

    async def _user(self, user_id: int) -> UserRow:
        user = await self._users.get(user_id)
        if user is None:
            raise refuse(ErrorCode.UNKNOWN_USER, "no such user")
        return user

    async def _tell_admins(self, group_id: int, body: dict[str, object], *also: int) -> None:
        admins = await self._admin.admin_ids(group_id)
        await self._social.notify(tuple(dict.fromkeys([*admins, *also])), Cmd.GROUP_REQUEST_EVENT, body)

    async def _add(self, group: GroupRow, user_id: int, actor: int) -> None:
        try:
            await self._store.add_member(group.id, user_id, max_members=self._settings.max_group_members)
        except AlreadyMember:
            raise refuse(ErrorCode.ALREADY_MEMBER, "already a member of this group") from None
        except GroupFull:
            raise refuse(
                ErrorCode.GROUP_FULL, f"the group is full ({self._settings.max_group_members} members)"
            ) from None
        await self._social.announce(GroupChange(group.id, "joined", actor, user_id))

    # --- joining -------------------------------------------------------------------

    async def _usable_invite(self, token: str, group_id: int | None) -> Invite:
        invite = await self._admin.invite_by_token(invite_token_hash(token)) if token else None
        if invite is None or (group_id is not None and invite.group_id != group_id):
            raise refuse(ErrorCode.UNKNOWN_INVITE, "this invitation does not exist")
        if invite.revoked:
            raise refuse(ErrorCode.INVITE_REVOKED, "this invitation was revoked")
        if invite.expires <= now_ms():
            raise refuse(ErrorCode.INVITE_EXPIRED, "this invitation has expired")
        return invite

    async def link_group(self, token: str) -> GroupRow:
        """The group an invite link leads to, for the join page to show before joining;
        refused exactly as joining with the link would be."""
        invite = await self._usable_invite(token, None)
        return await self._group(invite.group_id)

    async def join(self, user_id: int, group_id: int | None, *, token: str = "", ip: str = "") -> JoinOutcome:
        """Join by id (``open`` groups, or with an invitation to the user), by invite
        link ``token``, or file a join request (``approval`` groups)."""
        link = await self._usable_invite(token, group_id) if token else None
        group = await self._group(link.group_id if link else group_id or 0)
        if await self._admin.role_of(group.id, user_id) is not None:
            raise refuse(ErrorCode.ALREADY_MEMBER, "you are already a member of this group")
        if await self._admin.is_banned(group.id, user_id):
            raise refuse(ErrorCode.BANNED, "you are banned from this group")
        self._limit(self.join_limiter_user, self.join_limiter_ip, user_id, ip, "group joins")
        personal = None if link else await self._admin.personal_invite(group.id, user_id)
        if group.join_policy == "open" or link or personal:
            await self._add(group, user_id, user_id)
            if link or personal:
                await self._admin.use_invite((link or personal).id)  # type: ignore[union-attr]
            return JoinOutcome(group, True)
        if group.join_policy == "invite":
            raise refuse(ErrorCode.INVITE_REQUIRED, "this group can only be joined with an invitation")
        try:
            await self._admin.request_join(group.id, user_id)
        except AlreadyRequested:
            raise refuse(ErrorCode.ALREADY_REQUESTED, "you already asked to join this group") from None
        await self._tell_admins(group.id, {"event": "join_request", "groupid": group.id, "userid": user_id}, user_id)
        return JoinOutcome(group, False)

    async def cancel_join(self, user_id: int, group_id: int) -> None:
        await self._group(group_id)
        if not await self._admin.drop_join_request(group_id, user_id):
            raise refuse(ErrorCode.NO_JOIN_REQUEST, "you have not asked to join this group")
        await self._tell_admins(group_id, {"event": "join_cancelled", "groupid": group_id, "userid": user_id}, user_id)

    async def join_requests(self, actor: int, group_id: int) -> list[tuple[UserRow, int]]:
        await self._require(actor, group_id, ADMINS)
        pending = await self._admin.join_requests(group_id)
        by_id = {u.id: u for u in await self._users.get_many([u for u, _ in pending])}
        return [(by_id[u], created) for u, created in pending if u in by_id]

    async def approve(self, actor: int, group_id: int, user_id: int) -> None:
        group, _ = await self._require(actor, group_id, ADMINS)
        if not await self._admin.has_join_request(group_id, user_id):
            raise refuse(ErrorCode.NO_JOIN_REQUEST, "that user has not asked to join")
        if await self._admin.is_banned(group_id, user_id):
            raise refuse(ErrorCode.BANNED, "that user is banned from this group; unban them first")
        await self._add(group, user_id, actor)  # deletes the request in the same transaction
        await self._tell_admins(group_id, {"event": "join_approved", "groupid": group_id, "userid": user_id}, user_id)

    async def decline(self, actor: int, group_id: int, user_id: int) -> None:
        await self._require(actor, group_id, ADMINS)
        if not await self._admin.drop_join_request(group_id, user_id):
            raise refuse(ErrorCode.NO_JOIN_REQUEST, "that user has not asked to join")
        await self._tell_admins(group_id, {"event": "join_declined", "groupid": group_id, "userid": user_id}, user_id)

    # --- roles, settings, removal, bans ---------------------------------------------

    async def set_role(self, actor: int, group_id: int, member_id: int, role: str) -> None:
        if role not in ("admin", "member"):
            raise refuse(ErrorCode.BAD_PARAM, "role must be admin or member")
        group, _ = await self._require(actor, group_id, OWNER)
        if member_id == group.ownerid:
            raise refuse(ErrorCode.OWNER_FIXED, "the owner's role cannot be changed")
        if not await self._admin.set_role(group_id, member_id, role):
            raise refuse(ErrorCode.NOT_MEMBER, "that user is not a member of this group", status=200)
        for listener in self.role_listeners:
            listener(group_id, member_id, role, actor)

    async def update_settings(
        self, actor: int, group_id: int, *, join_policy: str | None, history_visibility: str | None
    ) -> GroupRow:
        group, _ = await self._require(actor, group_id, OWNER)
        policy = join_policy or group.join_policy
        visibility = history_visibility or group.history_visibility
        check_group_settings(policy, visibility)
        await self._admin.set_settings(group_id, join_policy=policy, history_visibility=visibility)
        return await self._group(group_id)

    async def remove_member(self, actor: int, group_id: int, member_id: int) -> None:
        """An owner or admin removes ``member_id`` and bans them from rejoining."""
        group, role = await self._require(actor, group_id, ADMINS)
        if member_id == group.ownerid:
            raise refuse(ErrorCode.OWNER_FIXED, "the owner cannot be removed from the group")
        target_role = await self._admin.role_of(group_id, member_id)
        if target_role is None:
            raise refuse(ErrorCode.NOT_MEMBER, "that user is not a member of this group", status=200)
        if target_role == "admin" and role != "owner":
            raise refuse(ErrorCode.ROLE_REQUIRED, "only the group owner may remove an admin")
        await self._admin.ban(group_id, member_id, actor)
        if not await self._store.remove_member(group_id, member_id):
            raise refuse(ErrorCode.NOT_MEMBER, "that user is not a member of this group", status=200)
        await self._social.announce(GroupChange(group_id, "removed", actor, member_id))

    async def admit(self, group_id: int, user_id: int) -> None:
        """The server API adds a member whatever the join policy (lifting a ban)."""
        group = await self._group(group_id)
        await self._user(user_id)
        await self._admin.unban(group_id, user_id)
        await self._add(group, user_id, group.ownerid)

    async def expel(self, group_id: int, member_id: int) -> None:
        """The server API removes a member (no ban: the product decides who is in)."""
        group = await self._group(group_id)
        if member_id == group.ownerid:
            raise refuse(ErrorCode.OWNER_FIXED, "the owner cannot be removed from the group")
        if not await self._store.remove_member(group_id, member_id):
            raise refuse(ErrorCode.NOT_MEMBER, "that user is not a member of this group", status=200)
        await self._social.announce(GroupChange(group_id, "removed", group.ownerid, member_id))

    async def bans(self, actor: int, group_id: int) -> list[tuple[UserRow, int, int]]:
        await self._require(actor, group_id, ADMINS)
        rows = await self._admin.bans(group_id)
        by_id = {u.id: u for u in await self._users.get_many([u for u, _, _ in rows])}
        return [(by_id[u], by, created) for u, by, created in rows if u in by_id]

    async def unban(self, actor: int, group_id: int, user_id: int) -> None:
        await self._require(actor, group_id, ADMINS)
        if not await self._admin.unban(group_id, user_id):
            raise refuse(ErrorCode.NOT_BANNED, "that user is not banned from this group")

    async def roles(self, group_id: int) -> dict[int, str]:
        return await self._admin.roles(group_id)

    async def my_roles(self, user_id: int) -> dict[int, str]:
        return await self._admin.roles_of_user(user_id)

    # --- invitations ---------------------------------------------------------------

    def _ttl(self, ttl_seconds: int) -> int:
        ttl = ttl_seconds or self._settings.invite_ttl_seconds
        if not 60 <= ttl <= MAX_INVITE_TTL_SECONDS:
            raise refuse(ErrorCode.BAD_PARAM, f"ttl must be 60 to {MAX_INVITE_TTL_SECONDS} seconds")
        return ttl * 1000

    async def invite_user(self, actor: int, group_id: int, invitee_id: int, *, ip: str = "") -> Invite:
        """An invitation addressed to one user: they join with ``joincommunity`` whatever
        the policy (cmd 42 ``invited`` tells them)."""
        await self._require(actor, group_id, ADMINS)
        await self._user(invitee_id)
        if await self._admin.role_of(group_id, invitee_id) is not None:
            raise refuse(ErrorCode.ALREADY_MEMBER, "that user is already a member of this group")
        if await self._admin.is_banned(group_id, invitee_id):
            raise refuse(ErrorCode.BANNED, "that user is banned from this group; unban them first")
        self._limit(self.invite_limiter_user, self.invite_limiter_ip, actor, ip, "invitations")
        invite = await self._admin.create_invite(
            group_id, actor, ttl_ms=self._ttl(0), invitee_id=invitee_id
        )
        await self._social.notify(
            (invitee_id,), Cmd.GROUP_REQUEST_EVENT,
            {"event": "invited", "groupid": group_id, "userid": invitee_id, "by": actor},
        )
        return invite

    async def create_link(self, actor: int, group_id: int, *, ttl_seconds: int = 0, ip: str = "") -> tuple[Invite, str]:
        """A new invite link; the token (128+ random bits) is returned only here."""
        await self._require(actor, group_id, ADMINS)
        ttl_ms = self._ttl(ttl_seconds)
        self._limit(self.invite_limiter_user, self.invite_limiter_ip, actor, ip, "invitations")
        token = secrets.token_urlsafe(24)
        invite = await self._admin.create_invite(group_id, actor, ttl_ms=ttl_ms, token_hash=invite_token_hash(token))
        return invite, token

    async def invites(self, actor: int, group_id: int) -> list[Invite]:
        await self._require(actor, group_id, ADMINS)
        return await self._admin.invites(group_id)

    async def revoke(self, actor: int, group_id: int, invite_id: int) -> None:
        await self._require(actor, group_id, ADMINS)
        invite = await self._admin.get_invite(invite_id)
        if invite is None or invite.group_id != group_id:
            raise refuse(ErrorCode.UNKNOWN_INVITE, "this invitation does not exist")
        if not await self._admin.revoke_invite(invite_id):
            raise refuse(ErrorCode.INVITE_REVOKED, "this invitation was revoked already")
