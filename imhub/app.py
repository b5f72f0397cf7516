"""Composition root: ``build_app(settings)`` wires the store, bus, hub, services and
web routes together. Nothing else constructs long-lived objects."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.bus.base import Bus
from imhub.bus.local import LocalBus
from imhub.config import Settings
from imhub.gateway.hub import Hub
from imhub.media.service import MediaService
from imhub.services.accounts import AccountService
from imhub.services.messaging import MessagingService
from imhub.services.presence import LocalPresence, Presence, RedisPresence
from imhub.services.social import SocialService
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.social import SocialStore
from imhub.store.users import UserStore


@dataclass
class Services:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    db: Database
    engine: AsyncEngine  # db.async_engine: for health checks, admin and bulk tools
    users: UserStore
    social_store: SocialStore
    accounts: AccountService
    social: SocialService
    media: MediaService
    presence: Presence
    bus: Bus
    hub: Hub
    messaging: MessagingService


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def node_id() -> str:
    """Names this process on the bus (its own echoes are recognised by it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def build_bus(settings: Settings) -> Bus:
    """``local``: this process only. ``redis``: every process and node on one Redis."""
    if settings.bus == "redis":
        from imhub.bus.redis import RedisBus

        return RedisBus(settings.redis_url, prefix=settings.redis_prefix)
    return LocalBus()


def build_presence(settings: Settings, node: str) -> Presence:
    """Presence follows the bus: shared through Redis whenever the bus is."""
    if settings.bus == "redis":
        return RedisPresence(settings.redis_url, node, prefix=settings.redis_prefix)
    return LocalPresence()


def build_services(settings: Settings) -> Services:
    db = Database(settings.effective_database_url, settings.db_pool_size)
    users = UserStore(db)
    social_store = SocialStore(db)
    social = SocialService(settings, users, social_store)
    node = node_id()
    presence = build_presence(settings, node)
    bus = build_bus(settings)
    hub = Hub(node)
    accounts = AccountService(settings, users)
    messaging = MessagingService(settings, MessageStore(db), users, social, presence, bus, hub)
    accounts.revocation_listeners.append(messaging.revoke_sessions)
    return Services(
        settings=settings,
        db=db,
        engine=db.async_engine,
        users=users,
        social_store=social_store,
        accounts=accounts,
        social=social,
        media=MediaService(settings),
        presence=presence,
        bus=bus,
        hub=hub,
        messaging=messaging,
    )


def build_app(settings: Settings) -> web.Application:
    from imhub.web import middleware, routes

    svc = build_services(settings)
    app = web.Application(
        client_max_size=max(settings.max_body_bytes, settings.max_upload_bytes + 64 * 1024),
        middlewares=[middleware.edge_middleware(settings.max_body_bytes)],
    )
    app[SERVICES] = svc
    routes.setup(app)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await svc.presence.start()
        await svc.messaging.start()
        yield
        await svc.messaging.stop()
        await svc.presence.close()
        await svc.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app
