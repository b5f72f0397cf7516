"""HTTP handlers for ``/contact/*``: friends and groups (the seed calls groups
"communities"). Every route needs a logged-in caller; ``userid``/``ownerid`` sent by
the client must be the caller, ``dstid`` names the other user or the group."""

from __future__ import annotations

from aiohttp import web

from imhub.services.consent import request_json
from imhub.web.auth import caller, client_address
from imhub.web.context import services
from imhub.web.people import visible_user, visible_users
from imhub.web.responses import ok, rows
from imhub.web.views import community_json

# --- friends -----------------------------------------------------------------------


async def add_friend(request: web.Request) -> web.Response:
    """Friends at once under the seed's open policy (``data``: the friend, as the seed
    expects), else a friend request (``data``: the user with ``request``)."""
    user_id, p = await caller(request)
    outcome = await services(request).consent.add_friend(
        user_id, p.ident("dstid"), memo=p.text("memo", required=False, max_len=128), ip=client_address(request)
    )
    data = await visible_user(request, user_id, outcome.user)
    if outcome.added:
        return ok(data, msg="friend added")
    assert outcome.request is not None
    return ok({**data, "request": request_json(outcome.request)}, msg="friend request sent")


async def remove_friend(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).social.remove_friend(user_id, p.ident("dstid"))
    return ok(msg="friend removed")


async def load_friends(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    friends = await services(request).social.friends(user_id)
    return rows(await visible_users(request, user_id, friends))


# --- groups ------------------------------------------------------------------------


async def create_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request, "ownerid")
    group = await services(request).social.create_group(
        user_id,
        name=p.text("name", max_len=64),
        icon=p.text("icon", required=False, max_len=512),
        cate=p.number("cate", required=False, default=0, min_value=0),
        memo=p.text("memo", required=False, max_len=512),
        join_policy=p.text("joinpolicy", required=False, max_len=12),
        history_visibility=p.text("visibility", required=False, max_len=12),
    )
    return ok(community_json(group, role="owner"), msg="group created")


async def join_community(request: web.Request) -> web.Response:
    """By id, with an invitation to the caller, or by invite link ``token``; in an
    ``approval`` group without one it files a join request (``data.pending``)."""
    user_id, p = await caller(request)
    token = p.text("token", required=False, max_len=64)
    outcome = await services(request).groups.join(
        user_id, p.ident("dstid", required=not token) or None, token=token, ip=client_address(request)
    )
    if outcome.joined:
        return ok(community_json(outcome.group, role="member"), msg="joined the group")
    return ok({**community_json(outcome.group), "pending": True}, msg="join request sent")


async def leave_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).social.leave(user_id, p.ident("dstid"))
    return ok(msg="left the group")


async def load_communities(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    svc = services(request)
    groups = await svc.social.groups_of(user_id)
    roles = await svc.groups.my_roles(user_id)
    return rows([community_json(g, role=roles.get(g.id, "member")) for g in groups])


async def members(request: web.Request) -> web.Response:
    """Members (owner first), each with their ``role``."""
    user_id, p = await caller(request)
    svc = services(request)
    group_id = p.ident("dstid")
    people = await svc.social.members(user_id, group_id)
    roles = await svc.groups.roles(group_id)
    shown = await visible_users(request, user_id, people)
    return rows([{**u, "role": roles.get(u["id"], "member")} for u in shown])


async def rename_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    group = await services(request).social.rename(user_id, p.ident("dstid"), p.text("name", max_len=64))
    return ok(community_json(group), msg="group renamed")


async def remove_member(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.remove_member(user_id, p.ident("dstid"), p.ident("memberid"))
    return ok(msg="member removed and banned from rejoining")


def setup(app: web.Application) -> None:
    app.router.add_post("/contact/addfriend", add_friend)
    app.router.add_post("/contact/delfriend", remove_friend)
    app.router.add_post("/contact/loadfriend", load_friends)
    app.router.add_post("/contact/createcommunity", create_community)
    app.router.add_post("/contact/joincommunity", join_community)
    app.router.add_post("/contact/leavecommunity", leave_community)
    app.router.add_post("/contact/loadcommunity", load_communities)
    app.router.add_post("/contact/members", members)
    app.router.add_post("/contact/renamecommunity", rename_community)
    app.router.add_post("/contact/removemember", remove_member)
