"""Every route module registers itself here, in one visible list."""

from __future__ import annotations

from aiohttp import web

from imhub.web import accounts, attach, chat, consent, messages, openapi, ops, pages, push, server_api, social


def setup(app: web.Application) -> None:
    ops.setup(app)  # first: the drain state and the access log the others rely on
    accounts.setup(app)
    attach.setup(app)
    social.setup(app)
    consent.setup(app)
    chat.setup(app)
    messages.setup(app)
    push.setup(app)
    openapi.setup(app)
    server_api.setup(app)
    pages.setup(app)
