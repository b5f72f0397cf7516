"""Administration: the server side of the ``/admin/`` API (:class:`AdminService`) and
the client ``imhub admin`` uses (:class:`AdminClient`).

One approach for one process and for many: ``imhub admin`` always talks HTTP to a
running server (any worker, any node), authenticated by ``IMHUB_ADMIN_TOKEN``. What
must reach every process goes over the bus (kicks, bans: ``Envelope.revoke``; notices);
who is online comes from the presence store (Redis with ``IMHUB_BUS=redis``, this
process's hub otherwise). See docs/operations.md.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from sqlalchemy import func, select

from imhub.bus.base import Envelope
from imhub.clock import now_ms
from imhub.errors import ApiError
from imhub.gateway.hub import KICK
from imhub.gateway.wsframe import text_frame
from imhub.services.presence import RedisPresence
from imhub.services.social import GroupChange
from imhub.store.tables import communities, messages, users

if TYPE_CHECKING:
    from imhub.app import Services

log = structlog.get_logger("imhub.admin")

# Server-only event: a notice from the operators to one user (docs/protocol.md).
CMD_SYSTEM_NOTICE = 40
# Group notices are media-10 events with this content, the text in memo.
SYSTEM_EVENT_KIND = "system"
MAX_NOTICE_CHARS = 1024
_STARTED = time.time()


class AdminService:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def _user(self, user_id: int) -> None:
        if await self.svc.users.get(user_id) is None:
            raise ApiError(f"no user {user_id}", status=404)

    async def _publish(self, env: Envelope) -> None:
        try:
            await self.svc.bus.publish(env)
        except Exception:
            log.warning("bus publish failed; acting on this process only", users=env.users)
            self.svc.hub.deliver(env)

    async def online(self) -> list[int]:
        """Every user with a connection on any process."""
        presence = self.svc.presence
        if isinstance(presence, RedisPresence):
            now = now_ms()
            keys: list[bytes] = [k async for k in presence.redis.scan_iter(match=f"{presence.prefix}:p:*", count=1000)]
            found: set[int] = set()
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                async with presence.redis.pipeline(transaction=False) as pipe:
                    for k in chunk:
                        pipe.zcount(k, f"({now}", "+inf")
                    counts = await pipe.execute()
                for k, n in zip(chunk, counts, strict=True):
                    tail = k.rsplit(b":", 1)[-1]
                    if int(n) > 0 and tail.isdigit():
                        found.add(int(tail))
            return sorted(found | set(self.svc.hub.users))
        return sorted(self.svc.hub.users)

    async def kick(self, user_id: int) -> dict[str, Any]:
        """Close the user's connections everywhere (4002); they may reconnect."""
        await self._user(user_id)
        online = await self.svc.presence.is_online(user_id)
        await self._publish(Envelope(users=(user_id,), group=0, frame=b"", node=self.svc.hub.node_id, revoke=KICK))
        return {"user": user_id, "was_online": online}

    async def ban(self, user_id: int, banned: bool) -> dict[str, Any]:
        """Ban: no login, every token revoked, every socket closed (4001). Unban:
        logging in works again."""
        await self._user(user_id)
        await self.svc.users.set_banned(user_id, banned)
        if banned:
            await self.svc.users.revoke_all_tokens(user_id)
            for listener in list(self.svc.accounts.revocation_listeners):
                await listener(user_id, "*")
        return {"user": user_id, "banned": banned}

    async def notice_user(self, user_id: int, text: str) -> dict[str, Any]:
        """A live notice (cmd 40) to every connection of the user; not stored."""
        await self._user(user_id)
        text = _notice_text(text)
        online = await self.svc.presence.is_online(user_id)
        if online:
            frame = text_frame(orjson.dumps({"cmd": CMD_SYSTEM_NOTICE, "text": text, "ts": now_ms()}))
            await self._publish(Envelope(users=(user_id,), group=0, frame=frame, node=self.svc.hub.node_id))
        return {"user": user_id, "delivered": online}

    async def notice_group(self, group_id: int, text: str) -> dict[str, Any]:
        """A stored media-10 event ``content:"system"`` in the group's stream."""
        text = _notice_text(text)
        if await self.svc.social.get_group(group_id) is None:
            raise ApiError(f"no group {group_id}", status=404)
        await self.svc.messaging.on_group_change(
            GroupChange(group_id=group_id, kind=SYSTEM_EVENT_KIND, actor=0, subject=0, name=text)
        )
        return {"group": group_id, "stored": True}

    async def stats(self) -> dict[str, Any]:
        hub = self.svc.hub
        async with self.svc.engine.connect() as conn:
            n_users = (await conn.execute(select(func.count()).select_from(users))).scalar_one()
            n_groups = (await conn.execute(select(func.count()).select_from(communities))).scalar_one()
            n_msgs = (await conn.execute(select(func.max(messages.c.id)))).scalar_one() or 0
        return {
            "node": hub.node_id,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - _STARTED, 1),
            "bus": self.svc.settings.bus,
            "connections_here": hub.connection_count(),
            "users_here": len(hub.users),
            "groups_here": len(hub.groups),
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


# --- the client side (imhub admin) -------------------------------------------------------


class AdminError(Exception):
    """A refused or failed admin call, with the server's message."""


class AdminClient:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.token:
            raise AdminError("IMHUB_ADMIN_TOKEN is not set (the same token the server runs with)")
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(  # noqa: S310 - the operator's own server URL
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                reply = json.loads(exc.read())
            except ValueError:
                raise AdminError(f"HTTP {exc.code} from {self.base_url}{path}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the server at {self.base_url}: {reason}") from None
        if not isinstance(reply, dict) or reply.get("code") != 0:
            msg = reply.get("msg") if isinstance(reply, dict) else None
            raise AdminError(str(msg or reply))
        return reply.get("data")
