"""What request handlers reach: the :class:`Services` built once per process by
:func:`imhub.app.build_services`, stored on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from imhub.bus.base import Bus
from imhub.bus.presence import Presence
from imhub.config import Settings
from imhub.gateway.node import GatewayNode
from imhub.media.service import MediaService
from imhub.services.accounts import AccountService
from imhub.services.admin import AdminService
from imhub.services.apikeys import ApiKeyService
from imhub.services.consent import ConsentService
from imhub.services.conversations import ConversationService
from imhub.services.groups import GroupService
from imhub.services.messaging import MessagingService
from imhub.services.push import PushService
from imhub.services.server_api import ServerApiService
from imhub.services.social import SocialService
from imhub.services.webhooks import BeforeSendHook, WebhookService
from imhub.store.db import Database
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
    consent: ConsentService
    groups: GroupService
    media: MediaService
    presence: Presence
    bus: Bus
    messaging: MessagingService
    conversations: ConversationService
    admin: AdminService
    node: GatewayNode
    apikeys: ApiKeyService
    server_api: ServerApiService
    webhooks: WebhookService
    before_send: BeforeSendHook | None
    push: PushService


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
