"""Administration: the server side of the ``/admin/`` API.

One approach for one process and for many: what must reach every process goes over the
bus (kicks and bans as :class:`~imhub.bus.base.Revoke` controls; notices as
deliveries); who is online comes from the presence store (Redis with
``IMHUB_BUS=redis``, this process's connections otherwise). See docs/operations.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.bus.presence import Presence
from imhub.bus.presence_redis import RedisPresence
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.errors import ApiError
from imhub.services.messaging import MessagingService
from imhub.services.social import GroupChange, SocialService
from imhub.store.tables import communities, messages, users
from imhub.store.users import UserStore

# Server-only event: a notice from the operators to one user (docs/protocol.md).
CMD_SYSTEM_NOTICE = 40
# Group notices are media-10 events with this content, the text in memo.
SYSTEM_EVENT_KIND = "system"
MAX_NOTICE_CHARS = 1024
_STARTED = time.time()


class LocalConnections(Protocol):
    """What this process's gateway node tells about its own connections."""

    node_id: str

    def users_here(self) -> Iterable[int]: ...

    def counts(self) -> dict[str, int]: ...


class AdminService:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        users: UserStore,
        social: SocialService,
        presence: Presence,
        messaging: MessagingService,
        local: LocalConnections,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._users = users
        self._social = social
        self._presence = presence
        self._messaging = messaging
        self._local = local

    async def _user(self, user_id: int) -> None:
        if await self._users.get(user_id) is None:
            raise ApiError(f"no user {user_id}", status=404)

    async def online(self) -> list[int]:
        """Every user with a connection on any process."""
        here = set(self._local.users_here())
        presence = self._presence
        if not isinstance(presence, RedisPresence):
            return sorted(here)
        return sorted(await presence.everyone_online() | here)

    async def kick(self, user_id: int) -> dict[str, Any]:
        """Close the user's connections everywhere (4002); they may reconnect."""
        await self._user(user_id)
        online = await self._presence.is_online(user_id)
        await self._messaging.kick(user_id)
        return {"user": user_id, "was_online": online}

    async def ban(self, user_id: int, banned: bool) -> dict[str, Any]:
        """Ban: no login, every token revoked, every socket closed (4001). Unban:
        logging in works again."""
        await self._user(user_id)
        await self._users.set_banned(user_id, banned)
        if banned:
            await self._users.revoke_all_tokens(user_id)
            await self._messaging.revoke_sessions(user_id, "*")
        return {"user": user_id, "banned": banned}

    async def notice_user(self, user_id: int, text: str) -> dict[str, Any]:
        """A live notice (cmd 40) to every connection of the user; not stored."""
        await self._user(user_id)
        text = _notice_text(text)
        online = await self._presence.is_online(user_id)
        if online:
            payload = orjson.dumps({"cmd": CMD_SYSTEM_NOTICE, "text": text, "ts": now_ms()})
            await self._messaging.publish_event((user_id,), 0, payload)
        return {"user": user_id, "delivered": online}

    async def notice_group(self, group_id: int, text: str) -> dict[str, Any]:
        """A stored media-10 event ``content:"system"`` in the group's stream."""
        text = _notice_text(text)
        if await self._social.get_group(group_id) is None:
            raise ApiError(f"no group {group_id}", status=404)
        await self._messaging.on_group_change(
            GroupChange(group_id=group_id, kind=SYSTEM_EVENT_KIND, actor=0, subject=0, name=text)
        )
        return {"group": group_id, "stored": True}

    async def stats(self) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            n_users = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
            n_groups = (await conn.execute(select(func.count()).select_from(communities))).scalar_one()
            n_msgs = (await conn.execute(select(func.max(messages.c.id)))).scalar_one() or 0
        return {
            "node": self._local.node_id,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - _STARTED, 1),
            "bus": self._settings.bus,
            **self._local.counts(),
            "online_users": len(await self.online()),
            "accounts": int(n_users),
            "groups": int(n_groups),
            "messages": int(n_msgs),
        }


def _notice_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ApiError("the notice text is empty", status=400)
    if len(text) > MAX_NOTICE_CHARS:
        raise ApiError(f"the notice is longer than {MAX_NOTICE_CHARS} characters", status=400)
    return text
