"""HTTP handlers for ``/user/*``: thin — parse, call the account service, respond."""

from __future__ import annotations

from aiohttp import web

from imhub.app import services
from imhub.web.auth import set_session_cookie
from imhub.web.params import read_params
from imhub.web.responses import ok
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
    )
    return ok(user_json(user, private=True), msg="registered")


async def login(request: web.Request) -> web.Response:
    p = await read_params(request)
    svc = services(request)
    # The seed's first demo posted "password"; its client posts "passwd". Take either.
    passwd = p.text("passwd", required="password" not in p, max_len=128) or p.text("password", max_len=128)
    user, token = await svc.accounts.login(p.text("mobile", max_len=20), passwd)
    response = ok(user_json(user, token=token, online=True, private=True), msg="logged in")
    set_session_cookie(response, token, svc.settings.token_ttl_seconds, svc.settings.cookie_secure)
    return response


def setup(app: web.Application) -> None:
    app.router.add_post("/user/register", register)
    app.router.add_post("/user/login", login)
