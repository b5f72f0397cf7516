"""``GET /chat``: the WebSocket endpoint. Authenticates the handshake, then glues the
socket to a sans-I/O :class:`~imhub.protocol.session.Session`, the gateway node (which
registers the connection and delivers to it) and the services (which answer its
requests). All decisions are made in the session and the services; this file only
moves bytes and runs actions."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from imhub import metrics
from imhub.domain.model import Cmd
from imhub.errors import ApiError, ErrorCode, Forbidden, RateLimited, Refused, Unauthorized
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
from imhub.protocol.wsreader import (
    CLOSE_NORMAL,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    FrameReader,
    WsError,
    close_payload,
    parse_close,
)
from imhub.services.batch import RETRY_AFTER_SECONDS, retryable
from imhub.store.handshake import Opening
from imhub.web import origin as web_origin
from imhub.web.auth import client_address, request_token
from imhub.web.context import SERVICES, Services, services
from imhub.web.handoff import HandoffResponse, take_transport
from imhub.web.ops import CLOSE_SERVICE_RESTART, DRAIN, DrainState, drain, frame_label
from imhub.web.people import matching_contacts

log = structlog.get_logger("imhub.gateway")

# The frame reader drops (1009) anything beyond this outright; up to it, the session
# answers an oversize frame with an error frame and keeps the connection.
HARD_FRAME_FACTOR = 4
# ``/chat?v=2``: a client that speaks docs/protocol.md (acks, receipts, events, sync).
# Without it the connection is a seed client's (imhub.protocol.seed).
PROTOCOL_VERSION = "2"
PING_FRAME = bytes((0x89, 0))
SESSIONS = web.AppKey("sessions", dict[Connection, Session])
# After a server-side close, how long the socket waits for the client's close reply
# (closing earlier could drop the transport and the client would see 1006, not our code).
CLOSE_REPLY_SECONDS = 5.0
CONNECTIONS_PER_IP = web.AppKey("connections_per_ip", dict[str, int])
# Held by the sessions that use them: a user's bucket goes when their last socket does.
ALLOWANCES = web.AppKey("allowances", weakref.WeakValueDictionary[int, Allowance])
_HOT = metrics.HOT
_FRAMES_IN = _HOT.frames_in
_CLOSED = _HOT.closed


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


def release_address(per_ip: dict[str, int], address: str) -> None:
    left = per_ip.get(address, 1) - 1
    if left > 0:
        per_ip[address] = left
    else:
        per_ip.pop(address, None)


async def chat(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    opening, address = await admit(request, svc)
    user_id = opening.user_id
    state = request.app[CHAT_STATE]
    if state.svc is None:
        state.svc, state.drain, state.loop = svc, request.app[DRAIN], asyncio.get_running_loop()
        state.limits = session_limits(svc)

    ws = HandoffResponse(compress=False)
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    per_ip = state.per_ip
    per_ip[address] = per_ip.get(address, 0) + 1
    loop = asyncio.get_running_loop()
    sock = ChatSocket(state, transport, address, svc.settings.max_frame_bytes * HARD_FRAME_FACTOR)
    conn = sock.conn = Connection(
        user_id, transport, sock.close_cb, svc.settings.send_buffer_bytes, loop,
        token_hash=opening.token_hash,
        seed=request.query.get("v", "") != PROTOCOL_VERSION,
    )
    # One allowance per user in this process, however many tabs are open.
    limits = state.limits
    allowances = request.app[ALLOWANCES]
    allowance = allowances.get(user_id)
    if allowance is None:
        allowance = allowances[user_id] = Allowance(limits)
    session = sock.session = Session(user_id, limits, loop.time(), allowance=allowance)
    conn.catching_up = request.query.get("autosync", "1") != "0"
    try:
        await svc.node.connect(conn, opening)
    except BaseException:
        sock.lost = True
        release_address(per_ip, address)
        raise
    state.sessions[conn] = session
    # debug, not info: rendered, each of these two lines cost ~30 µs (JSON) to ~75 µs
    # (console) of a ~1 ms reconnect; the access line (path, 101, remote) stays at info
    # and imhub_connections_closed_total counts the close reasons.
    log.debug("connection open", user=user_id, conn=conn.id)
    _HOT.opened += 1
    # From here on the socket is read by ChatSocket, not by aiohttp (imhub.web.handoff);
    # this handler returns and keeps nothing of the request alive.
    taken = take_transport(request)
    if taken is None:  # the client left during the handshake
        sock.connection_lost(None)
        return ws
    transport.set_protocol(sock)
    if state.drain.draining:  # the drain began while this handshake was in flight
        conn.close(CLOSE_SERVICE_RESTART, "service restart: reconnect")
    if conn.catching_up:
        sock.start_work(None)  # frames wait behind the backlog
    if taken[1]:
        sock.data_received(taken[1])
    return ws


class ChatState:
    """What every socket of the app shares (one object, so a socket holds one reference);
    the services, drain state and loop are filled in by the first handshake."""

    __slots__ = ("drain", "limits", "loop", "per_ip", "sessions", "svc")

    def __init__(self, sessions: dict[Connection, Session], per_ip: dict[str, int]) -> None:
        self.sessions = sessions
        self.per_ip = per_ip
        self.svc: Services | None = None
        self.drain = DrainState()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.limits = Limits()


CHAT_STATE = web.AppKey("chat_state", ChatState)


# Frames read while a request runs wait in the socket's queue; past this many the socket
# is not read until the queue is down to a quarter (aiohttp's reader paused the same way).
QUEUE_PAUSE = 64
_PONG_HEAD = bytes((0x80 | OP_PONG,))


class ChatSocket(asyncio.Protocol):
    """One authenticated WebSocket after the upgrade: reads frames straight from the
    transport (imhub.protocol.wsreader), feeds the session, answers what can be
    answered at once (heartbeats, pings) in ``data_received`` and runs requests one at a
    time, in order, in a task that exists only while there is work."""

    __slots__ = (
        "address",
        "close_timer",
        "conn",
        "lost",
        "paused",
        "peer_closed",
        "peer_code",
        "queue",
        "reader",
        "reason",
        "sent_code",
        "session",
        "state",
        "task",
        "transport",
    )

    def __init__(self, state: ChatState, transport: asyncio.Transport, address: str, max_size: int) -> None:
        self.state = state
        self.transport = transport
        self.address = address
        self.reader = FrameReader(max_size)
        self.conn: Connection
        self.session: Session
        self.queue: deque[tuple[int, str | bytes]] | None = None
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.lost = False
        self.peer_closed = False
        self.peer_code: int | None = None
        self.sent_code: int | None = None  # the code we closed with
        self.close_timer: asyncio.TimerHandle | None = None
        self.reason = "client closed"

    # --- input ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.lost or self.peer_closed:
            return
        reader = self.reader
        if self.queue is None and reader.is_heartbeat(data):
            # The commonest read by far (every client, every 20-25 s): answered here,
            # with no frame list, actions or task; counted like any frame.
            reply = self.session.heartbeat(self.state.loop.time())
            _FRAMES_IN["0"] = _FRAMES_IN.get("0", 0) + 1
            if reply is not None:
                self.conn.push_reply(text_frame(reply))
            return
        for op, payload in reader.feed(data):
            queue = self.queue
            if queue is not None:
                queue.append((op, payload))
                if len(queue) >= QUEUE_PAUSE and not self.paused:
                    self.paused = True
                    self.transport.pause_reading()
                continue
            request = self.frame(op, payload)
            if request is not None:
                self.start_work(request)
            elif self.peer_closed or self.lost:
                return
        if reader.error is not None and self.queue is None:
            self.protocol_error(reader.error)

    def protocol_error(self, err: WsError) -> None:
        """Close with the violation's code (1002, 1007, 1009); nothing more is read."""
        self.reason = f"error: {err.reason}"
        self.peer_closed = True
        self.conn.close(err.code, err.reason)

    def frame(self, op: int, payload: str | bytes) -> Request | None:
        """Act on one message; returns the request to execute, if it is one."""
        conn, session = self.conn, self.session
        now = self.state.loop.time()
        if op <= OP_BINARY:
            frames_counted = _FRAMES_IN
            for action in session.receive(payload, now):
                if isinstance(action, Reply):
                    label = "0" if action.data.startswith(b'{"cmd":0,') else "invalid"
                    frames_counted[label] = frames_counted.get(label, 0) + 1
                    conn.push_reply(text_frame(action.data), action.answers_request)
                    continue
                label = frame_label(action)
                frames_counted[label] = frames_counted.get(label, 0) + 1
                if isinstance(action, Execute):
                    if self.state.drain.draining:
                        continue  # not acked: the client resends it after reconnecting
                    if conn.closed or self.transport.is_closing():
                        return None  # the socket is closing: its requests are dropped
                    return action.request
                if isinstance(action, Close):
                    self.reason = action.reason
                    conn.close(action.code, action.reason)
            return None
        if op == OP_PING:
            session.activity(now)
            if not self.transport.is_closing():
                self.transport.write(_PONG_HEAD + bytes((len(payload),)) + payload)  # type: ignore[operator]
        elif op == OP_PONG:
            session.activity(now)
        else:  # close
            try:
                code, _ = parse_close(payload)  # type: ignore[arg-type]
            except WsError as err:
                self.protocol_error(err)
                return None
            self.peer_code = 0 if code is None else code
            self.peer_closed = True
            if conn.closed:  # the answer to our close
                self._close_transport()
            else:
                conn.close(CLOSE_NORMAL, "")
        return None

    # --- requests, one at a time ---------------------------------------------------

    def start_work(self, request: Request | None) -> None:
        """Run ``request`` (None: the catch-up) in a task; frames read meanwhile wait.
        The common chat message is queued for its commit right here instead (nothing
        else of this socket is in flight, so the order holds): no task per message."""
        if type(request) is SendMessage:
            svc = self.state.svc
            assert svc is not None
            if svc.messaging.send_now(self.conn, request.draft):
                return
        self.queue = deque()
        self.task = self.state.loop.create_task(self._work(request))

    async def _work(self, request: Request | None) -> None:
        queue = self.queue
        assert queue is not None
        svc = self.state.svc
        assert svc is not None
        try:
            if request is None:
                await svc.node.push_backlog(self.conn)
            else:
                await self._execute(svc, request)
            while queue and not self.lost:
                op, payload = queue.popleft()
                if self.paused and len(queue) <= QUEUE_PAUSE // 4 and not self.transport.is_closing():
                    self.paused = False
                    self.transport.resume_reading()
                request = self.frame(op, payload)
                if request is not None:
                    await self._execute(svc, request)
                elif self.peer_closed:
                    break
            if self.reader.error is not None and not self.lost and not self.peer_closed:
                self.protocol_error(self.reader.error)
        except Exception:
            log.exception("gateway socket failed", user=self.conn.user_id, conn=self.conn.id)
            self.reason = "server error"
            self.transport.abort()
        finally:
            self.queue = None
            self.task = None
            if self.paused:
                self.paused = False
                if not self.transport.is_closing():
                    self.transport.resume_reading()

    async def _execute(self, svc: Services, request: Request) -> None:
        drain = self.state.drain
        drain.inflight += 1
        try:
            await execute(svc, self.conn, request)
        finally:
            drain.inflight -= 1

    # --- closing -------------------------------------------------------------------

    def close_cb(self, code: int, reason: str) -> None:
        """The connection's close: send the close frame; the transport closes when the
        client answers it (or at once if it closed first, or after CLOSE_REPLY_SECONDS)."""
        transport = self.transport
        if self.lost or transport.is_closing():
            return
        if self.peer_code is None:  # not the answer to the client's close
            self.sent_code = code
        payload = close_payload(code, reason)
        transport.write(bytes((0x80 | OP_CLOSE, len(payload))) + payload)
        if self.peer_closed:
            self._close_transport()
        else:
            self.close_timer = self.state.loop.call_later(CLOSE_REPLY_SECONDS, self._close_transport)

    def _close_transport(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if self.queue is not None:
            self.queue.clear()
        state, conn = self.state, self.conn
        if state.sessions.pop(conn, None) is None:
            return  # never registered (the handshake failed), or already cleaned up
        release_address(state.per_ip, self.address)
        conn.closed = True
        svc = state.svc
        assert svc is not None
        svc.node.disconnect(conn)
        code = self.sent_code if self.sent_code is not None else self.peer_code
        reason = metrics.close_reason(code)
        _CLOSED[reason] = _CLOSED.get(reason, 0) + 1
        log.debug("connection closed", user=conn.user_id, conn=conn.id, reason=self.reason, code=code)


async def execute(svc: Services, conn: Connection, request: Request) -> None:
    """Run one validated request and push its reply (or error) to ``conn``."""
    rid = getattr(request, "rid", None)
    answers_request = rid is not None
    try:
        reply = await answer(svc, conn, request)
    except Refused as err:
        if err.rid is None:
            err.rid = rid
        reply = encode_error(err)
    except Exception as exc:
        if not retryable(exc):
            raise  # a bug: the socket closes ("gateway socket failed"), the client resyncs
        # The database was busy (the read pool timed out, a lost connection): this
        # frame failed, the socket did not. Its client resends or asks again after
        # retry_after, as for a message not stored (docs/protocol.md, 5030); closing
        # the socket instead made every client reconnect and resync everything, the
        # opposite of what a busy database needs.
        cid = request.draft.cid if isinstance(request, SendMessage) else None
        log.warning("request failed: database busy; client told to retry", user=conn.user_id,
                    request=type(request).__name__, error=f"{type(exc).__name__}: {exc}")
        metrics.requests_overloaded.inc()
        reply = encode_error(Refused(
            ErrorCode.OVERLOADED, "server busy; retry after retry_after seconds", status=503,
            cid=cid, rid=rid, retry_after=RETRY_AFTER_SECONDS,
        ))
        answers_request = answers_request or cid is not None  # a send's 5030 names its cid
    if reply is not None:
        conn.push_reply(text_frame(reply), answers_request)


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


async def close_sockets(app: web.Application) -> None:
    """Shutdown, after the drain told every socket to reconnect: the sockets are not
    aiohttp's (imhub.web.handoff), so aiohttp's shutdown does not wait for them; give
    the clients the time to answer the close, then drop what is left."""
    sessions = app[SESSIONS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLOSE_REPLY_SECONDS
    while sessions and loop.time() < deadline:  # noqa: ASYNC110 (no event to wait on)
        await asyncio.sleep(0.05)
    for conn in list(sessions):
        transport = conn.transport
        if isinstance(transport, asyncio.Transport):
            transport.abort()


def setup(app: web.Application) -> None:
    app[SESSIONS] = {}
    app[CONNECTIONS_PER_IP] = {}
    app[CHAT_STATE] = ChatState(app[SESSIONS], app[CONNECTIONS_PER_IP])
    app[ALLOWANCES] = weakref.WeakValueDictionary()
    app.router.add_get("/chat", chat)
    app.cleanup_ctx.append(_sweeper)
    # Shutdown (SIGTERM): finish in-flight requests, then close every socket with 1012.
    app.on_shutdown.append(drain)
    app.on_shutdown.append(close_sockets)
