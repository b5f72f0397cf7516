"""What one user may see of others (docs/security.md "Who can see what").

- yourself: everything (``mobile``, real ``online``); ``token`` only at login;
- a friend: real ``online``; ``mobile`` only if they opted in (``/user/privacy``
  ``showmobile=1``);
- anyone else (group members included): public fields only — ``mobile`` is ``""``
  and ``online`` is ``false`` (presence is for friends); nickname, avatar, sex and
  memo are public.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imhub.store.users import UserRow
from imhub.web.context import Services, services
from imhub.web.views import community_json, user_json


async def visible_user(request: web.Request, viewer: int, user: UserRow) -> dict[str, Any]:
    svc = services(request)
    me = user.id == viewer
    friend = not me and await svc.social.are_friends(viewer, user.id)
    mobile = me or (friend and (await svc.consent.privacy_of(user.id)).show_mobile)
    online = (me or friend) and await svc.presence.is_online(user.id)
    return user_json(user, online=online, private=mobile)


async def visible_users(request: web.Request, viewer: int, users: list[UserRow]) -> list[dict[str, Any]]:
    return await shown_users(services(request), viewer, users)


async def shown_users(svc: Services, viewer: int, users: list[UserRow]) -> list[dict[str, Any]]:
    close = set(await svc.social.friend_ids(viewer)) | {viewer}
    shown = [u.id for u in users if u.id in close]
    online = await svc.presence.online_among(shown)
    privacy = await svc.consent.privacy_of_many([i for i in shown if i != viewer])
    mobile = {viewer} | {i for i, p in privacy.items() if p.show_mobile}
    return [user_json(u, online=u.id in online, private=u.id in mobile) for u in users]


async def matching_contacts(svc: Services, viewer: int, q: str) -> dict[str, list[dict[str, Any]]]:
    """The ``users`` (friends) and ``groups`` (the viewer's) a search's first page lists."""
    users, groups = await svc.consent.matching_contacts(viewer, q)
    roles = await svc.groups.my_roles(viewer) if groups else {}
    return {
        "users": await shown_users(svc, viewer, users),
        "groups": [community_json(g, role=roles.get(g.id, "member")) for g in groups],
    }
