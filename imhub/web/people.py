"""What one user may see of others.

- yourself: everything (``mobile``, real ``online``); ``token`` only at login;
- a friend: ``mobile`` and ``online`` too;
- anyone else: public fields only — ``mobile`` is ``""`` and ``online`` is ``false``
  (presence is for friends, SPEC §2), the rest (nickname, avatar, sex, memo) is public.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imhub.store.users import UserRow
from imhub.web.context import services
from imhub.web.views import user_json


async def visible_user(request: web.Request, viewer: int, user: UserRow) -> dict[str, Any]:
    svc = services(request)
    close = user.id == viewer or await svc.social.are_friends(viewer, user.id)
    return user_json(user, online=close and await svc.presence.is_online(user.id), private=close)


async def visible_users(request: web.Request, viewer: int, users: list[UserRow]) -> list[dict[str, Any]]:
    svc = services(request)
    close = set(await svc.social.friend_ids(viewer)) | {viewer}
    online = await svc.presence.online_among([u.id for u in users if u.id in close])
    return [user_json(u, online=u.id in online, private=u.id in close) for u in users]
