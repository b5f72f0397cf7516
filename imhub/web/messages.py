"""HTTP twins of the WebSocket requests (docs/protocol.md): for clients that are not
connected, scripts and tests. Same services, same rules, seed-style envelopes; a
refusal carries its stable error name in ``error`` (imhub.web.responses.refused)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imhub.domain.ngrams import MAX_QUERY_CHARS
from imhub.errors import ApiError
from imhub.protocol.frames import message_dict
from imhub.web.auth import caller
from imhub.web.context import services
from imhub.web.people import matching_contacts
from imhub.web.responses import ok, rows

_MAX_SEQ = 2**63 - 1


def _after_param(text: str) -> dict[str, int]:
    """``"p1_2:41,g12:0"`` -> ``{"p1_2": 41, "g12": 0}`` (works as a form field too)."""
    after: dict[str, int] = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        conv, _, seq = part.partition(":")
        if not conv or len(conv) > 48 or not seq.isdigit() or len(after) >= 1000:
            raise ApiError("after must look like p1_2:41,g12:0")
        after[conv] = int(seq)
    return after


async def conversations(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    convs = await services(request).conversations.conversations(user_id)
    return rows(convs)


async def sync(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    svc = services(request)
    limit = min(p.number("limit", required=False, default=svc.settings.sync_page_size, min_value=1),
                svc.settings.sync_page_size)
    page = await svc.conversations.sync(user_id, _after_param(p.text("after", max_len=60000)), limit)
    return rows([message_dict(m) for m in page.messages], after=page.after, more=page.more, denied=page.denied)


async def history(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    svc = services(request)
    limit = min(p.number("limit", required=False, default=50, min_value=1), svc.settings.sync_page_size)
    before = p.number("before", required=False, default=_MAX_SEQ, min_value=1)
    msgs, more = await svc.conversations.history(user_id, p.text("conv", max_len=48), before, limit)
    return rows([message_dict(m) for m in msgs], more=more)


async def search(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    q = p.text("q", max_len=MAX_QUERY_CHARS)
    limit = min(p.number("limit", required=False, default=20, min_value=1), 100)
    before = p.number("before", required=False, default=_MAX_SEQ, min_value=1)
    svc = services(request)
    hits, more = await svc.conversations.search(user_id, q, before, limit)
    contacts: dict[str, Any] = await matching_contacts(svc, user_id, q) if "before" not in p else {}
    return rows(hits, more=more, **contacts)


async def read(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    delivered, read_seq = await services(request).messaging.mark_read(
        user_id, p.text("conv", max_len=48), p.number("seq", min_value=0)
    )
    return ok({"delivered_seq": delivered, "read_seq": read_seq})


async def recall(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    m = await services(request).messaging.recall(user_id, p.ident("id"))
    return ok(message_dict(m), msg="recalled")


async def receipts(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    cursors = await services(request).conversations.receipts(user_id, p.text("conv", max_len=48))
    return rows(cursors)


def setup(app: web.Application) -> None:
    app.router.add_post("/message/conversations", conversations)
    app.router.add_post("/message/sync", sync)
    app.router.add_post("/message/history", history)
    app.router.add_post("/message/search", search)
    app.router.add_post("/message/read", read)
    app.router.add_post("/message/recall", recall)
    app.router.add_post("/message/receipts", receipts)
