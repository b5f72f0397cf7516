"""HTTP handlers for ``/user/*``: thin — parse, call the account service, respond.

``register`` and ``login`` are public; everything else needs the session cookie (or
``Authorization: Bearer``), and a ``userid`` sent by the client must be the caller.
"""

from __future__ import annotations

from aiohttp import web

from imhub.domain.model import Cmd
from imhub.services.login_guard import DEVICE_COOKIE
from imhub.web.auth import (
    caller,
    clear_session_cookie,
    client_address,
    current_user,
    request_token,
    set_device_cookie,
    set_session_cookie,
)
from imhub.web.context import services
from imhub.web.params import read_params
from imhub.web.people import visible_user
from imhub.web.responses import ApiError, ok
from imhub.web.views import user_json


async def register(request: web.Request) -> web.Response:
    p = await read_params(request)
    svc = services(request)
    user = await svc.accounts.register(
        mobile=p.text("mobile", max_len=20),
        passwd=p.text("passwd", max_len=128),
        nickname=p.text("nickname", required=False, max_len=64),
        avatar=p.text("avatar", required=False, max_len=512),
        sex=p.text("sex", required=False, default="U", max_len=1),
        memo=p.text("memo", required=False, max_len=512),
        ip=client_address(request),
    )
    if user.avatar:  # uploaded before the account existed (the seed's register page): keep it
        await svc.media.claim(user.avatar, user.id)
    return ok(user_json(user, private=True), msg="registered")


async def login(request: web.Request) -> web.Response:
    p = await read_params(request)
    svc = services(request)
    # The seed's first demo posted "password"; its client posts "passwd". Take either.
    passwd = p.text("passwd", required="password" not in p, max_len=128) or p.text("password", max_len=128)
    user, token, device = await svc.accounts.login(
        p.text("mobile", max_len=20), passwd, ip=client_address(request),
        device_cookie=request.cookies.get(DEVICE_COOKIE, ""),
    )
    response = ok(user_json(user, token=token, online=True, private=True), msg="logged in")
    set_session_cookie(response, token, svc.settings.token_ttl_seconds, svc.settings.cookie_secure)
    set_device_cookie(response, device, svc.settings.cookie_secure)
    return response


async def find(request: web.Request) -> web.Response:
    """By ``id`` (the seed) or by ``mobile`` (to add a friend by phone number)."""
    viewer = await current_user(request)
    p = await read_params(request)
    accounts = services(request).accounts
    if "id" in p and p.text("id", required=False):
        user = await accounts.get(p.ident("id"))
    elif "mobile" in p and p.text("mobile", required=False):
        user = await accounts.find_by_mobile(p.text("mobile", max_len=20), by=viewer)
        # Users who opted out of being found by number (or blocked the caller) read
        # exactly like a number nobody registered.
        if not await services(request).consent.findable_by_mobile(user.id, viewer):
            raise ApiError("no user with this mobile number")
    else:
        raise ApiError("id or mobile is required")
    return ok(await visible_user(request, viewer, user))


async def me(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    return ok(await visible_user(request, user_id, await services(request).accounts.get(user_id)))


async def update(request: web.Request) -> web.Response:
    user_id, p = await caller(request)

    def optional(name: str, max_len: int) -> str | None:
        # Absent means "leave as is"; present (even empty) means "set to this".
        return p.text(name, required=False, max_len=max_len) if name in p else None

    svc = services(request)
    nickname, avatar = optional("nickname", 64), optional("avatar", 512)
    user = await svc.accounts.update_profile(
        user_id, nickname=nickname, avatar=avatar, sex=optional("sex", 1), memo=optional("memo", 512)
    )
    if nickname is not None or avatar is not None:
        # Chats already open elsewhere (the friends', my other tabs) show the new name
        # and picture without a reload: cmd 44 (docs/protocol.md).
        friends = await svc.social.friend_ids(user_id)
        await svc.social.notify(
            (user_id, *friends), Cmd.PROFILE_EVENT,
            {"userid": user_id, "nickname": user.nickname, "avatar": user.avatar},
        )
    return ok(await visible_user(request, user_id, user), msg="profile updated")


async def logout(request: web.Request) -> web.Response:
    """Revoke this session's token and clear the cookie; succeeds even when the token
    is already gone, so a client can always log out."""
    await services(request).accounts.logout(request_token(request))
    response = ok(msg="logged out")
    clear_session_cookie(response)
    return response


async def password(request: web.Request) -> web.Response:
    """Change the password: every device is logged out, this one gets a new token."""
    user_id, p = await caller(request)
    svc = services(request)
    token = await svc.accounts.change_password(
        user_id, p.text("oldpasswd", max_len=128), p.text("newpasswd", max_len=128)
    )
    user = await svc.accounts.get(user_id)
    response = ok(
        user_json(user, token=token, online=await svc.presence.is_online(user_id), private=True), msg="password changed"
    )
    set_session_cookie(response, token, svc.settings.token_ttl_seconds, svc.settings.cookie_secure)
    return response


def setup(app: web.Application) -> None:
    app.router.add_post("/user/register", register)
    app.router.add_post("/user/login", login)
    app.router.add_post("/user/find", find)
    app.router.add_post("/user/me", me)
    app.router.add_post("/user/update", update)
    app.router.add_post("/user/logout", logout)
    app.router.add_post("/user/password", password)
