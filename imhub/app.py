"""Composition root: ``build_services(settings)`` wires the store, bus, services and
gateway node together, ``build_app(settings)`` adds the web routes. Nothing else
constructs long-lived objects, and every listener is registered here."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from imhub.bus.base import Bus
from imhub.bus.local import LocalBus
from imhub.bus.presence import LocalPresence, Presence
from imhub.bus.presence_redis import RedisPresence
from imhub.bus.redis import RedisBus
from imhub.config import Settings
from imhub.gateway.node import GatewayNode
from imhub.media.ledger import MediaLedger
from imhub.media.service import MediaService
from imhub.media.sweeper import run_sweeper
from imhub.services.accounts import AccountService
from imhub.services.admin import AdminService
from imhub.services.apikeys import ApiKeyService
from imhub.services.authz import Authorizer
from imhub.services.consent import ConsentService
from imhub.services.conversations import ConversationService
from imhub.services.groups import GroupService
from imhub.services.messaging import MessagingService
from imhub.services.push import PushService
from imhub.services.server_api import ServerApiService
from imhub.services.social import SocialService
from imhub.services.webhooks import BeforeSendHook, WebhookService
from imhub.store.consent import ConsentStore
from imhub.store.db import Database
from imhub.store.integration import IntegrationStore
from imhub.store.messages import MessageStore
from imhub.store.push import PushStore
from imhub.store.social import SocialStore
from imhub.store.users import UserStore
from imhub.store.webhooks import WebhookStore
from imhub.web import middleware, routes
from imhub.web.context import SERVICES, Services

__all__ = ["SERVICES", "Services", "build_app", "build_services"]


def node_id() -> str:
    """Names this process on the bus (its own echoes are recognised by it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def build_bus(settings: Settings) -> Bus:
    """``local``: this process only. ``redis``: every process and node on Redis (one or
    several shards)."""
    if settings.bus == "redis":
        return RedisBus(settings.redis_urls, prefix=settings.redis_prefix, wire_version=settings.bus_wire_version)
    return LocalBus()


def build_presence(settings: Settings, node: str) -> Presence:
    """Presence follows the bus: shared through Redis whenever the bus is."""
    if settings.bus == "redis":
        return RedisPresence(settings.redis_urls, node, prefix=settings.redis_prefix)
    return LocalPresence()


def build_services(settings: Settings) -> Services:
    db = Database(settings.effective_database_url, settings.db_pool_size)
    users = UserStore(db)
    social_store = SocialStore(db)
    messages = MessageStore(db)
    social = SocialService(settings, users, social_store)
    consent = ConsentService(settings, users, ConsentStore(db), social)
    groups = GroupService(settings, users, social_store, social.groups_store, social)
    node = node_id()
    presence = build_presence(settings, node)
    bus = build_bus(settings)
    accounts = AccountService(settings, users)
    authz = Authorizer(social, users)
    before_send = BeforeSendHook(settings) if settings.webhook_before_send_url else None
    messaging = MessagingService(settings, messages, social, authz, bus, node, before_send)
    conversations = ConversationService(settings, messages, social, authz)
    gateway = GatewayNode(
        node, bus, presence, authz, social, users, messages, messaging, conversations,
        page_size=settings.sync_page_size, seed_group_events=settings.seed_group_events,
    )

    push = PushService(settings, PushStore(db), messages, presence)
    messaging.stored_listeners.append(push.on_stored)

    accounts.revocation_listeners.append(messaging.revoke_sessions)
    social.membership_listeners.append(messaging.on_membership_change)
    social.group_change_listeners.append(messaging.on_group_change)
    social.friendship_listeners.append(messaging.on_friendship_change)
    social.event_listeners.append(messaging.on_social_event)
    integration = IntegrationStore(db)
    webhooks = WebhookService(settings, WebhookStore(db), node)
    messaging.stored_listeners.append(webhooks.message_stored)
    messaging.recall_listeners.append(webhooks.message_recalled)
    gateway.presence_listeners.append(webhooks.presence)
    social.event_listeners.append(webhooks.on_social_event)
    social.group_change_listeners.append(webhooks.on_group_change)
    groups.role_listeners.append(webhooks.on_role_change)

    return Services(
        settings=settings,
        db=db,
        engine=db.async_engine,
        users=users,
        social_store=social_store,
        accounts=accounts,
        social=social,
        consent=consent,
        groups=groups,
        media=MediaService(settings, ledger=MediaLedger(db)),
        presence=presence,
        bus=bus,
        messaging=messaging,
        conversations=conversations,
        admin=AdminService(settings, db.async_engine, users, social, presence, messaging, gateway),
        node=gateway,
        apikeys=ApiKeyService(settings, integration),
        webhooks=webhooks,
        before_send=before_send,
        server_api=ServerApiService(
            settings, users, integration, accounts, social, groups, authz, messaging, conversations, presence
        ),
        push=push,
    )


def build_app(settings: Settings) -> web.Application:
    svc = build_services(settings)
    app = web.Application(
        client_max_size=max(settings.max_body_bytes, settings.max_upload_bytes + 64 * 1024),
        middlewares=[
            middleware.edge_middleware(
                settings.max_body_bytes, middleware.content_security_policy(settings.media_base_url)
            )
        ],
    )
    app[SERVICES] = svc
    routes.setup(app)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await svc.presence.start()
        await svc.node.start()
        svc.messaging.start()
        svc.webhooks.start()
        await svc.push.start()
        sweeper = asyncio.create_task(run_sweeper(svc.media))
        yield
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)
        svc.media.close()
        await svc.messaging.stop()
        await svc.push.stop()
        await svc.node.stop()
        await svc.webhooks.stop()
        if svc.before_send is not None:
            await svc.before_send.close()
        await svc.presence.close()
        await svc.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app
