"""``GET /chat``: the WebSocket endpoint. Authenticates the handshake, then glues the
socket to a sans-I/O :class:`~imhub.protocol.session.Session`, the gateway node (which
registers the connection and delivers to it) and the services (which answer its
requests). All decisions are made in the session and the services; this file only
moves bytes and runs actions."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

import structlog
from aiohttp import WSMsgType, web

from imhub import metrics
from imhub.domain.model import Cmd
from imhub.errors import ApiError, Forbidden, RateLimited, Refused, Unauthorized
from imhub.gateway.connection import Connection
from imhub.protocol.frames import (
    ConversationsRequest,
    ConvSettingsRequest,
    EditRequest,
    ForwardRequest,
    HideRequest,
    HistoryRequest,
    PinRequest,
    ReactRequest,
    ReadRequest,
    RecallRequest,
    ReceiptsRequest,
    Request,
    SearchRequest,
    SendMessage,
    SyncRequest,
    TypingRequest,
    encode,
    encode_error,
    message_dict,
    stored_ref,
)
from imhub.protocol.session import Allowance, Close, Execute, Limits, Ping, Reply, Session
from imhub.protocol.wsframe import text_frame
from imhub.store.handshake import Opening
from imhub.store.users import token_hash
from imhub.web import origin as web_origin
from imhub.web.auth import client_address, request_token
from imhub.web.context import SERVICES, Services, services
from imhub.web.ops import CLOSE_SERVICE_RESTART, DRAIN, drain, frame_label
from imhub.web.people import matching_contacts
from imhub.web.wsmask import StrictWebSocketResponse

log = structlog.get_logger("imhub.gateway")

# aiohttp drops (1009) anything beyond this outright; up to it, the session answers an
# oversize frame with an error frame and keeps the connection.
HARD_FRAME_FACTOR = 4
# ``/chat?v=2``: a client that speaks docs/protocol.md (acks, receipts, events, sync).
# Without it the connection is a seed client's (imhub.protocol.seed).
PROTOCOL_VERSION = "2"
PING_FRAME = bytes((0x89, 0))
SESSIONS = web.AppKey("sessions", dict[Connection, Session])
# After a server-side close, how long the handler waits for the client's close reply
# (returning earlier drops the transport and the client sees 1006, not our code).
CLOSE_REPLY_SECONDS = 5.0
CONNECTIONS_PER_IP = web.AppKey("connections_per_ip", dict[str, int])
# Held by the sessions that use them: a user's bucket goes when their last socket does.
ALLOWANCES = web.AppKey("allowances", weakref.WeakValueDictionary[int, Allowance])


def origin_allowed(request: web.Request, svc: Services) -> bool:
    """The shared origin rule (imhub.web.origin: scheme, host and port). Non-browser
    clients send no Origin and are allowed; browsers always send it, which is what
    stops cross-site WebSocket hijacking."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return web_origin.origin_allowed(origin, request, svc.settings)


def session_limits(svc: Services) -> Limits:
    s = svc.settings
    return Limits(
        max_frame_bytes=s.max_frame_bytes,
        ping_interval=s.ping_interval_seconds,
        idle_timeout=s.idle_timeout_seconds,
        max_page=s.sync_page_size,
        media_base=s.media_base_url,
        send_rate=s.send_rate_per_second,
        send_burst=s.send_burst,
        request_rate=s.request_rate_per_second,
        request_burst=s.request_burst,
    )


def refuse(reason: str, error: Refused, **fields: object) -> Refused:
    """Count and log a refused handshake; returns the error to raise."""
    metrics.handshakes_refused.labels(reason).inc()
    log.info("handshake refused", reason=reason, status=error.status, **fields)
    return error


async def admit(request: web.Request, svc: Services) -> tuple[Opening, str]:
    """Every check before the upgrade: draining, Origin, token, ``id``, connections per
    address. Returns the user (with their groups and friends, read with the token) and
    the client address, or raises the refusal."""
    if request.app[DRAIN].draining:
        raise refuse("draining", ApiError("server restarting: connect again", status=503))
    if not origin_allowed(request, svc):
        raise refuse("origin", Forbidden("origin not allowed"), origin=request.headers.get("Origin"))
    opening = await svc.accounts.open_session(request_token(request, allow_query=True))
    if opening is None:
        raise refuse("token", Unauthorized())
    user_id = opening.user_id
    claimed = request.query.get("id", "")
    if claimed and claimed != str(user_id):
        raise refuse("id_mismatch", Forbidden("id does not match the token"), user=user_id, claimed=claimed[:32])
    address = client_address(request)
    limit = svc.settings.max_connections_per_ip
    if limit and request.app[CONNECTIONS_PER_IP].get(address, 0) >= limit:
        error = RateLimited("too many connections from your address", retry_after=10)
        raise refuse("too_many_connections", error, address=address)
    return opening, address


async def chat(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    drain_state = request.app[DRAIN]
    opening, address = await admit(request, svc)
    user_id = opening.user_id
    per_ip = request.app[CONNECTIONS_PER_IP]

    ws = StrictWebSocketResponse(
        autoping=False, compress=False, max_msg_size=svc.settings.max_frame_bytes * HARD_FRAME_FACTOR
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    per_ip[address] = per_ip.get(address, 0) + 1
    loop = asyncio.get_running_loop()

    closing: set[asyncio.Task[bool]] = set()

    sent_close: list[int] = []  # the code we closed with (ws.close_code is the peer's reply)

    def close_soon(code: int, reason: str) -> None:
        sent_close.append(code)
        task = loop.create_task(ws.close(code=code, message=reason.encode()))
        closing.add(task)
        task.add_done_callback(closing.discard)

    conn = Connection(
        user_id, transport, close_soon, svc.settings.send_buffer_bytes, loop,
        token_hash=token_hash(request_token(request, allow_query=True)),
        seed=request.query.get("v", "") != PROTOCOL_VERSION,
    )
    # One allowance per user in this process, however many tabs are open.
    limits = session_limits(svc)
    allowances = request.app[ALLOWANCES]
    allowance = allowances.get(user_id)
    if allowance is None:
        allowance = allowances[user_id] = Allowance(limits)
    session = Session(user_id, limits, loop.time(), allowance=allowance)
    node = svc.node
    conn.catching_up = request.query.get("autosync", "1") != "0"
    await node.connect(conn, opening)
    sessions = request.app[SESSIONS]
    sessions[conn] = session
    log.info("connection open", user=user_id, conn=conn.id)
    metrics.connections_opened.inc()
    metrics.connections_open.inc()
    if drain_state.draining:  # the drain began while this handshake was in flight
        conn.close(CLOSE_SERVICE_RESTART, "service restart: reconnect")
    reason = "client closed"
    frames_counted = metrics.HOT.frames_in
    try:
        if conn.catching_up:
            await node.push_backlog(conn)
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                for action in session.receive(msg.data, loop.time()):
                    label = frame_label(action)
                    frames_counted[label] = frames_counted.get(label, 0) + 1
                    if isinstance(action, Reply):
                        conn.push_reply(text_frame(action.data), action.answers_request)
                    elif isinstance(action, Execute):
                        if drain_state.draining:
                            continue  # not acked: the client resends it after reconnecting
                        if conn.closed or transport.is_closing():
                            break  # the client is gone: its queued requests are dropped
                        drain_state.inflight += 1
                        try:
                            await execute(svc, conn, action.request)
                        finally:
                            drain_state.inflight -= 1
                    elif isinstance(action, Close):
                        reason = action.reason
                        conn.close(action.code, action.reason)
            elif msg.type == WSMsgType.PING:
                session.activity(loop.time())
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                session.activity(loop.time())
            elif msg.type == WSMsgType.ERROR:
                reason = f"error: {ws.exception()!r}"
    finally:
        sessions.pop(conn, None)
        left = per_ip.get(address, 1) - 1
        if left > 0:
            per_ip[address] = left
        else:
            per_ip.pop(address, None)
        conn.closed = True
        node.disconnect(conn)
        metrics.connections_open.dec()
        code = sent_close[0] if sent_close else ws.close_code
        metrics.connections_closed.labels(metrics.close_reason(code)).inc()
        log.info("connection closed", user=user_id, conn=conn.id, reason=reason, code=code)
    if closing:  # we sent a close frame: keep the transport until the client answers it
        await asyncio.wait(set(closing), timeout=CLOSE_REPLY_SECONDS)
    return ws


async def execute(svc: Services, conn: Connection, request: Request) -> None:
    """Run one validated request and push its reply (or error) to ``conn``."""
    try:
        reply = await answer(svc, conn, request)
    except Refused as err:
        if err.rid is None:
            err.rid = getattr(request, "rid", None)
        reply = encode_error(err)
    if reply is not None:
        conn.push_reply(text_frame(reply), getattr(request, "rid", None) is not None)


async def answer(svc: Services, conn: Connection, request: Request) -> bytes | None:
    messaging, conversations, uid = svc.messaging, svc.conversations, conn.user_id
    match request:
        case SendMessage(draft):
            # Only authorized and queued: the socket goes on reading, so a burst from
            # one client is committed in one batch; the ack comes after the commit.
            await messaging.send(conn, draft)
            return None
        case SyncRequest(rid, after, limit):
            page = await conversations.sync(uid, after, limit)
            synced = await conversations.view(uid, page.messages)
            return encode(Cmd.SYNC_PAGE, rid=rid, msgs=synced, after=page.after, more=page.more, denied=page.denied)
        case ConversationsRequest(rid):
            own = await conversations.own_stream(uid)
            return encode(Cmd.CONVERSATION_LIST, rid=rid, convs=await conversations.conversations(uid), own=own)
        case HistoryRequest(rid, conv, before, limit):
            msgs, more = await conversations.history(uid, conv, before, limit)
            return encode(Cmd.HISTORY_PAGE, rid=rid, conv=conv, msgs=await conversations.view(uid, msgs), more=more)
        case ReadRequest(conv, seq):
            await messaging.mark_read(uid, conv, seq, origin=conn.id)
            return None
        case TypingRequest(conv):
            await messaging.typing(uid, conv, origin=conn.id)
            return None
        case RecallRequest(rid, message_id):
            m = await messaging.recall(uid, message_id, origin=conn.id)
            return encode(Cmd.RECALLED, rid=rid, conv=m.conv, id=m.id, seq=m.seq, userid=uid)
        case ReceiptsRequest(rid, conv):
            return encode(Cmd.RECEIPT_LIST, rid=rid, conv=conv, cursors=await conversations.receipts(uid, conv))
        case EditRequest(rid, message_id, text):
            update = await messaging.edit(uid, message_id, text, origin=conn.id)
            return encode(Cmd.DONE, rid=rid, msg=message_dict(update))
        case ReactRequest(rid, message_id, emoji, add):
            summary = await messaging.react(uid, message_id, emoji, add)
            return encode(Cmd.DONE, rid=rid, id=message_id, reactions=summary)
        case PinRequest(rid, message_id, pinned):
            pin = await messaging.pin(uid, message_id, pinned, origin=conn.id)
            return encode(Cmd.DONE, rid=rid, msg=message_dict(pin) if pin else None)
        case ConvSettingsRequest(rid, conv, pinned, muted):
            update = await messaging.conv_settings(uid, conv, pinned, muted, origin=conn.id)
            return encode(Cmd.DONE, rid=rid, msg=message_dict(update))
        case ForwardRequest(rid, ids, to):
            made = await messaging.forward(uid, ids, to, origin=conn.id)
            return encode(Cmd.DONE, rid=rid, msgs=[stored_ref(m) for m in made])
        case HideRequest(rid, ids, conv):
            if conv is not None:
                update = await messaging.clear(uid, conv, origin=conn.id)
            else:
                update = await messaging.hide(uid, ids, origin=conn.id)
            return encode(Cmd.DONE, rid=rid, msg=message_dict(update))
        case SearchRequest(rid, q, before, limit, first):
            hits, more = await conversations.search(uid, q, before, limit)
            contacts = await matching_contacts(svc, uid, q) if first else {}
            return encode(Cmd.SEARCH_RESULTS, rid=rid, hits=hits, more=more, **contacts)
    return None


async def sweep_sessions(app: web.Application) -> None:
    """One task for all sockets: ping the quiet, close the silent (cheaper than a timer
    per connection at 100k connections)."""
    settings = app[SERVICES].settings
    sessions = app[SESSIONS]
    loop = asyncio.get_running_loop()
    quiet = min(settings.ping_interval_seconds, settings.idle_timeout_seconds)
    interval = quiet / 5
    while True:
        await asyncio.sleep(interval)
        now = loop.time()
        # Only the quiet ones, and no per-session allocation for the rest: copying all
        # 16k (conn, session) pairs every sweep promoted them to the oldest GC generation
        # and set off full collections (~45 % of a holding worker's CPU).
        due = [(conn, session) for conn, session in sessions.items() if now - session.last_seen >= quiet]
        for conn, session in due:
            for action in session.tick(now):
                if isinstance(action, Ping):
                    conn.push(PING_FRAME)
                elif isinstance(action, Close):
                    conn.close(action.code, action.reason)


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(sweep_sessions(app), name="imhub-session-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    app[SESSIONS] = {}
    app[CONNECTIONS_PER_IP] = {}
    app[ALLOWANCES] = weakref.WeakValueDictionary()
    app.router.add_get("/chat", chat)
    app.cleanup_ctx.append(_sweeper)
    # Shutdown (SIGTERM): finish in-flight requests, then close every socket with 1012.
    app.on_shutdown.append(drain)
