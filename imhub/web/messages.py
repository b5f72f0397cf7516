"""HTTP twins of the WebSocket requests (docs/protocol.md): for clients that are not
connected, scripts and tests. Same services, same rules, seed-style envelopes; a
refusal carries its stable error name in ``error`` (imhub.web.responses.refused)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imhub.domain.model import MAX_CONTENT_CHARS
from imhub.domain.ngrams import MAX_QUERY_CHARS
from imhub.errors import ApiError
from imhub.protocol.frames import (
    MAX_EMOJI_CHARS,
    MAX_FORWARD_IDS,
    MAX_FORWARD_TO,
    MAX_IDS,
    emoji,
    message_dict,
    stored_ref,
)
from imhub.web.auth import caller
from imhub.web.context import services
from imhub.web.params import Params
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
    svc = services(request).conversations
    return rows(await svc.conversations(user_id), own=await svc.own_stream(user_id))


async def sync(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    svc = services(request)
    limit = min(p.number("limit", required=False, default=svc.settings.sync_page_size, min_value=1),
                svc.settings.sync_page_size)
    page = await svc.conversations.sync(user_id, _after_param(p.text("after", max_len=60000)), limit)
    msgs = await svc.conversations.view(user_id, page.messages)
    return rows(msgs, after=page.after, more=page.more, denied=page.denied)


async def history(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    svc = services(request)
    limit = min(p.number("limit", required=False, default=50, min_value=1), svc.settings.sync_page_size)
    before = p.number("before", required=False, default=_MAX_SEQ, min_value=1)
    msgs, more = await svc.conversations.history(user_id, p.text("conv", max_len=48), before, limit)
    return rows(await svc.conversations.view(user_id, msgs), more=more)


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


async def edit(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    text = p.text("content", max_len=MAX_CONTENT_CHARS)
    if not text.strip():
        raise ApiError("content is required")
    update = await services(request).messaging.edit(user_id, p.ident("id"), text)
    return ok(message_dict(update), msg="edited")


async def react(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    message_id = p.ident("id")
    summary = await services(request).messaging.react(
        user_id, message_id, emoji(p.text("emoji", max_len=MAX_EMOJI_CHARS)), bool(_bool(p, "add", True))
    )
    return ok({"id": message_id, "reactions": summary})


def _bool(p: Params, name: str, default: bool | None) -> bool | None:
    value = p.text(name, required=False, max_len=5)
    if not value:
        return default
    if value not in ("true", "false", "1", "0"):
        raise ApiError(f"{name} must be true or false")
    return value in ("true", "1")


async def pin(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    update = await services(request).messaging.pin(user_id, p.ident("id"), bool(_bool(p, "pinned", True)))
    return ok(message_dict(update) if update else None, msg="pinned")


async def conv_settings(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    pinned, muted = _bool(p, "pinned", None), _bool(p, "muted", None)
    if pinned is None and muted is None:
        raise ApiError("give pinned and/or muted")
    update = await services(request).messaging.conv_settings(user_id, p.text("conv", max_len=48), pinned, muted)
    return ok(message_dict(update), msg="saved")


def _id_list(text: str, most: int = MAX_IDS) -> tuple[int, ...]:
    """``"981,982"`` -> ``(981, 982)``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or len(parts) > most or not all(p.isdigit() and 0 < int(p) <= _MAX_SEQ for p in parts):
        raise ApiError(f"ids must be 1-{most} message ids like 981,982")
    return tuple(dict.fromkeys(int(p) for p in parts))


async def forward(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    to = tuple(dict.fromkeys(c.strip() for c in p.text("to", max_len=600).split(",") if c.strip()))
    if not 0 < len(to) <= MAX_FORWARD_TO or any(len(c) > 48 for c in to):
        raise ApiError(f"to must be 1-{MAX_FORWARD_TO} conversation ids like p1_2,g3")
    made = await services(request).messaging.forward(user_id, _id_list(p.text("ids"), MAX_FORWARD_IDS), to)
    return rows([stored_ref(m) for m in made])


async def hide(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    messaging = services(request).messaging
    conv = p.text("conv", max_len=48, required=False)
    if conv:
        update = await messaging.clear(user_id, conv)
    else:
        update = await messaging.hide(user_id, _id_list(p.text("ids", max_len=2000)))
    return ok(message_dict(update), msg="hidden")


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
    app.router.add_post("/message/edit", edit)
    app.router.add_post("/message/hide", hide)
    app.router.add_post("/message/forward", forward)
    app.router.add_post("/message/react", react)
    app.router.add_post("/message/pin", pin)
    app.router.add_post("/message/convsettings", conv_settings)
