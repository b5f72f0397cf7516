"""Composition root: ``build_app(settings)`` wires the store, bus, hub, services and
web routes together. Nothing else constructs long-lived objects."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.config import Settings
from imhub.media.service import MediaService
from imhub.services.accounts import AccountService
from imhub.services.presence import LocalPresence
from imhub.services.social import SocialService
from imhub.store.engine import create_engine
from imhub.store.social import SocialStore
from imhub.store.users import UserStore


@dataclass
class Services:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    engine: AsyncEngine
    users: UserStore
    social_store: SocialStore
    accounts: AccountService
    social: SocialService
    media: MediaService
    presence: LocalPresence


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def build_services(settings: Settings) -> Services:
    engine = create_engine(settings.effective_database_url, settings.db_pool_size)
    users = UserStore(engine)
    social_store = SocialStore(engine)
    return Services(
        settings=settings,
        engine=engine,
        users=users,
        social_store=social_store,
        accounts=AccountService(settings, users),
        social=SocialService(settings, users, social_store),
        media=MediaService(settings),
        presence=LocalPresence(),
    )


def build_app(settings: Settings) -> web.Application:
    from imhub.web import middleware, routes

    svc = build_services(settings)
    app = web.Application(
        client_max_size=max(settings.max_body_bytes, settings.max_upload_bytes + 64 * 1024),
        middlewares=[middleware.security_headers, middleware.error_middleware(settings.max_body_bytes)],
    )
    app[SERVICES] = svc
    routes.setup(app)

    async def close_engine(_app: web.Application) -> None:
        await svc.engine.dispose()

    app.on_cleanup.append(close_engine)
    return app
