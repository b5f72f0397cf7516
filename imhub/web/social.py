"""HTTP handlers for ``/contact/*``: friends and groups (the seed calls groups
"communities"). Every route needs a logged-in caller; ``userid``/``ownerid`` sent by
the client must be the caller, ``dstid`` names the other user or the group."""

from __future__ import annotations

from aiohttp import web

from imhub.web.auth import caller
from imhub.web.context import services
from imhub.web.people import visible_user, visible_users
from imhub.web.responses import ok, rows
from imhub.web.views import community_json

# --- friends -----------------------------------------------------------------------


async def add_friend(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    friend = await services(request).social.add_friend(user_id, p.ident("dstid"))
    return ok(await visible_user(request, user_id, friend), msg="friend added")


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
    )
    return ok(community_json(group), msg="group created")


async def join_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    group = await services(request).social.join(user_id, p.ident("dstid"))
    return ok(community_json(group), msg="joined the group")


async def leave_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).social.leave(user_id, p.ident("dstid"))
    return ok(msg="left the group")


async def load_communities(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    groups = await services(request).social.groups_of(user_id)
    return rows([community_json(g) for g in groups])


async def members(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    people = await services(request).social.members(user_id, p.ident("dstid"))
    return rows(await visible_users(request, user_id, people))


async def rename_community(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    group = await services(request).social.rename(user_id, p.ident("dstid"), p.text("name", max_len=64))
    return ok(community_json(group), msg="group renamed")


async def remove_member(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).social.remove_member(user_id, p.ident("dstid"), p.ident("memberid"))
    return ok(msg="member removed")


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
