"""Web Push routes (imhub/services/push.py): the VAPID public key for the browser's
``pushManager.subscribe``, and storing or dropping the browser's subscription."""

from __future__ import annotations

from aiohttp import web

from imhub.web.auth import caller
from imhub.web.context import services
from imhub.web.responses import ok


async def key(request: web.Request) -> web.Response:
    await caller(request)
    push = services(request).push
    return ok({"enabled": push.enabled, "public_key": push.public_key})


async def subscribe(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).push.subscribe(
        user_id, p.text("endpoint", max_len=1024), p.text("p256dh", max_len=128), p.text("auth", max_len=64)
    )
    return ok({"subscribed": True}, msg="subscribed")


async def unsubscribe(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    removed = await services(request).push.unsubscribe(user_id, p.text("endpoint", max_len=1024))
    return ok({"removed": removed})


def setup(app: web.Application) -> None:
    app.router.add_post("/push/key", key)
    app.router.add_post("/push/subscribe", subscribe)
    app.router.add_post("/push/unsubscribe", unsubscribe)
