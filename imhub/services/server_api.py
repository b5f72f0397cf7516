"""The server API's rules (``/server/v1/``, docs/server-api.md): what the
product that embeds imhub may do for its users, addressed by its own ids (``ext_id``).

Everything goes through the same services as the users' own requests: messages through
:class:`MessagingService` (stored, sequenced, published, synced like a socket send,
idempotent per ``cid``), groups through :class:`SocialService`/:class:`GroupService`,
reads through :class:`ConversationService` (as the user would see them), tokens through
:class:`AccountService` (whose revocations close the user's sockets).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from imhub.bus.presence import Presence
from imhub.config import Settings
from imhub.domain.model import Cmd, Message
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import SendMessage, decode, message_dict
from imhub.services.accounts import AccountService, validate_avatar, validate_nickname
from imhub.services.authz import Authorizer
from imhub.services.conversations import ConversationService
from imhub.services.groups import GroupService
from imhub.services.messaging import MessagingService
from imhub.services.social import SocialService
from imhub.store.integration import IntegrationStore
from imhub.store.social import GroupRow
from imhub.store.users import UserRow, UserStore

EXT_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
# The system account's ext_id: the product's own ids may not use this prefix.
RESERVED_PREFIX = "imhub:"
SYSTEM_EXT_ID = "imhub:system"
MAX_ONLINE_QUERY = 1000


def check_ext_id(ext_id: str) -> str:
    if not isinstance(ext_id, str) or not EXT_ID_RE.match(ext_id):
        raise Refused(ErrorCode.BAD_PARAM, "ext_id must be 1-128 letters, digits or _ . : @ -", status=400)
    if ext_id.startswith(RESERVED_PREFIX):
        raise Refused(ErrorCode.BAD_PARAM, f"ext_ids starting with {RESERVED_PREFIX!r} are reserved", status=400)
    return ext_id


def user_json(user: UserRow, ext_id: str | None) -> dict[str, Any]:
    return {
        "id": user.id, "ext_id": ext_id, "nickname": user.nickname, "avatar": user.avatar,
        "active": not user.banned, "createat": user.createat, "last_seen": user.last_seen,
    }


def group_json(group: GroupRow) -> dict[str, Any]:
    return {
        "id": group.id, "name": group.name, "ownerid": group.ownerid, "icon": group.icon, "memo": group.memo,
        "join_policy": group.join_policy, "visibility": group.history_visibility, "createat": group.createat,
    }


class ServerApiService:
    def __init__(
        self,
        settings: Settings,
        users: UserStore,
        store: IntegrationStore,
        accounts: AccountService,
        social: SocialService,
        groups: GroupService,
        authz: Authorizer,
        messaging: MessagingService,
        conversations: ConversationService,
        presence: Presence,
    ) -> None:
        self._settings = settings
        self._users = users
        self._store = store
        self._accounts = accounts
        self._social = social
        self._groups = groups
        self._authz = authz
        self._messaging = messaging
        self._conversations = conversations
        self._presence = presence

    # --- users ---------------------------------------------------------------------

    async def _id(self, ext_id: str) -> int:
        user_id = await self._store.user_id(check_ext_id(ext_id))
        if user_id is None:
            raise Refused(ErrorCode.UNKNOWN_USER, f"no user with ext_id {ext_id!r}", status=404)
        return user_id

    async def _user_json(self, user_id: int) -> dict[str, Any]:
        user = await self._users.get(user_id)
        if user is None:
            raise Refused(ErrorCode.UNKNOWN_USER, "no such user", status=404)
        return user_json(user, (await self._store.ext_ids([user_id])).get(user_id))

    async def provision(self, ext_id: str, nickname: str = "", avatar: str = "") -> dict[str, Any]:
        """The user with ``ext_id``, created without a password if new (``created``)."""
        check_ext_id(ext_id)
        nickname = validate_nickname(nickname) or ext_id[:64]
        avatar = validate_avatar(avatar, self._settings.media_base_url)
        user_id, created = await self._store.provision(ext_id, nickname, avatar)
        return {**await self._user_json(user_id), "created": created}

    async def user(self, ext_id: str) -> dict[str, Any]:
        return await self._user_json(await self._id(ext_id))

    async def update(
        self, ext_id: str, *, nickname: str | None, avatar: str | None, active: bool | None
    ) -> dict[str, Any]:
        user_id = await self._id(ext_id)
        await self._accounts.update_profile(user_id, nickname=nickname, avatar=avatar)
        if active is True:
            await self._users.set_banned(user_id, False)
        elif active is False:
            await self.deactivate(ext_id)
        return await self._user_json(user_id)

    async def deactivate(self, ext_id: str) -> dict[str, Any]:
        """No login and no new token; every token revoked, every socket closed."""
        user_id = await self._id(ext_id)
        await self._users.set_banned(user_id, True)
        await self._accounts.revoke_all(user_id)
        return await self._user_json(user_id)

    async def issue_token(self, ext_id: str, ttl_seconds: int) -> dict[str, Any]:
        """A login token (opaque, like a password login's) for the product to hand to
        the user's client: HTTP Bearer, cookie or the WebSocket's ``token``."""
        user_id = await self._id(ext_id)
        ttl = ttl_seconds or self._settings.token_ttl_seconds
        if not 60 <= ttl <= self._settings.server_api_max_token_ttl_seconds:
            raise Refused(
                ErrorCode.BAD_PARAM,
                f"ttl_seconds must be 60 to {self._settings.server_api_max_token_ttl_seconds}", status=400,
            )
        user = await self._users.get(user_id)
        if user is None or user.banned:
            raise Refused(ErrorCode.DEACTIVATED, "this user is deactivated", status=409)
        token = await self._accounts.issue_token(user_id, ttl)
        return {"id": user_id, "token": token, "ttl_seconds": ttl}

    async def revoke_tokens(self, ext_id: str) -> dict[str, Any]:
        user_id = await self._id(ext_id)
        await self._accounts.revoke_all(user_id)
        return {"id": user_id, "revoked": True}

    async def online(self, ext_ids: list[str]) -> dict[str, bool]:
        if len(ext_ids) > MAX_ONLINE_QUERY:
            raise Refused(ErrorCode.BAD_PARAM, f"at most {MAX_ONLINE_QUERY} ext_ids at once", status=400)
        ids = {e: await self._id(e) for e in dict.fromkeys(ext_ids)}
        online = await self._presence.online_among(list(ids.values()))
        return {e: uid in online for e, uid in ids.items()}

    # --- messages ------------------------------------------------------------------

    async def _system_id(self) -> int:
        user_id, _ = await self._store.provision(SYSTEM_EXT_ID, self._settings.server_api_system_name, "")
        return user_id

    async def send(
        self, *, sender: str | None, to_user: str | None, to_group: int | None, body: dict[str, Any], cid: str
    ) -> dict[str, Any]:
        """Send as the user ``sender`` (their rules apply: friends, membership) or, with
        no sender, as the system account (which becomes the recipient's contact, so the
        conversation is in their list and syncs). ``cid`` makes a retry harmless."""
        if (to_user is None) == (to_group is None):
            raise Refused(ErrorCode.BAD_PARAM, "give exactly one of to_user or to_group", status=400)
        system = sender is None
        sender_id = await self._system_id() if system else await self._id(sender or "")
        if to_user is not None:
            cmd, dstid = Cmd.PRIVATE, await self._id(to_user)
        else:
            cmd, dstid = Cmd.GROUP, int(to_group or 0)
        frame = {**body, "cmd": int(cmd), "dstid": dstid, "cid": cid}
        request = decode(orjson.dumps(frame), sender_id, max_page=1, media_base=self._settings.media_base_url)
        assert isinstance(request, SendMessage)
        draft = request.draft
        if system:
            if cmd == Cmd.PRIVATE:
                if not await self._social.are_friends(sender_id, dstid):
                    await self._social.befriend(sender_id, dstid)
            elif await self._social.get_group(dstid) is None:
                raise Refused(ErrorCode.UNKNOWN_TARGET, f"no group {dstid}", status=404)
        else:
            await self._authz.may_send(draft)
        message, duplicate = await self._messaging.store_once(draft)
        return {**message_dict(message), "duplicate": duplicate}

    # --- groups --------------------------------------------------------------------

    async def _group(self, group_id: int) -> GroupRow:
        group = await self._social.get_group(group_id)
        if group is None:
            raise Refused(ErrorCode.UNKNOWN_GROUP, "no such group", status=404)
        return group

    async def group(self, group_id: int) -> dict[str, Any]:
        group = await self._group(group_id)
        roles = await self._groups.roles(group_id)
        ext = await self._store.ext_ids(list(roles))
        members = [{"id": u, "ext_id": ext.get(u), "role": r} for u, r in sorted(roles.items())]
        return {**group_json(group), "members": members}

    async def create_group(
        self, *, owner: str, name: str, join_policy: str, visibility: str, members: list[str]
    ) -> dict[str, Any]:
        owner_id = await self._id(owner)
        member_ids = [await self._id(m) for m in dict.fromkeys(members) if m != owner]
        group = await self._social.create_group(
            owner_id, name=name, join_policy=join_policy, history_visibility=visibility
        )
        for member_id in member_ids:
            await self._groups.admit(group.id, member_id)
        return await self.group(group.id)

    async def update_group(
        self, group_id: int, *, name: str | None, join_policy: str | None, visibility: str | None
    ) -> dict[str, Any]:
        group = await self._group(group_id)
        if name is not None:
            await self._social.rename(group.ownerid, group_id, name)
        if join_policy is not None or visibility is not None:
            await self._groups.update_settings(
                group.ownerid, group_id, join_policy=join_policy, history_visibility=visibility
            )
        return await self.group(group_id)

    async def put_member(self, group_id: int, ext_id: str, role: str | None) -> dict[str, Any]:
        """Add ``ext_id`` to the group if they are not in it; set their role if given."""
        group = await self._group(group_id)
        user_id = await self._id(ext_id)
        if user_id not in await self._groups.roles(group_id):
            await self._groups.admit(group_id, user_id)
        if role is not None:
            await self._groups.set_role(group.ownerid, group_id, user_id, role)
        return await self.group(group_id)

    async def remove_member(self, group_id: int, ext_id: str) -> dict[str, Any]:
        await self._groups.expel(group_id, await self._id(ext_id))
        return await self.group(group_id)

    # --- reading -------------------------------------------------------------------

    async def conversations(self, ext_id: str) -> list[dict[str, Any]]:
        return await self._conversations.conversations(await self._id(ext_id))

    async def history(self, ext_id: str, conv: str, before: int, limit: int) -> tuple[list[Message], bool]:
        limit = max(1, min(limit, self._settings.sync_page_size))
        return await self._conversations.history(await self._id(ext_id), conv, before, limit)
