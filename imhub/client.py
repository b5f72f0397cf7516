"""An asyncio client for imhub, for bots, scripts and tests (docs/integration.md).

It speaks the modern protocol (``v=2``, docs/protocol.md) over one WebSocket that it
keeps open: it reconnects with exponential backoff and jitter, syncs what it missed
after every (re)connect and after a seq gap or a resync hint (cmd 37), and resends
unacknowledged messages with their ``cid`` so that a message is stored once however
often it is resent. Messages reach the caller once each, by ``(conv, seq)``::

    async with await Client.login("http://127.0.0.1:8080", "13800000001", "secret1") as bot:
        async for msg in bot.messages():
            if msg["userid"] != bot.user_id and msg.get("media") == 1:
                await bot.send(msg["dstid"], "echo: " + msg["content"], group=True)

An entry point like the CLI: it imports no layer of the server (only aiohttp and
orjson), so it can be lifted out into a package of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp
import orjson

__all__ = ["Client", "ClientClosed", "LoggedOut", "Refusal", "backoff_delay"]

Frame = dict[str, Any]

CLOSE_LOGGED_OUT = 4001
# Errors after which resending the same cid later can succeed (docs/protocol.md).
RETRYABLE = frozenset({"rate_limited", "overloaded", "internal"})
MESSAGE_CMDS = (10, 11)


class Refusal(Exception):
    """The server refused a request: ``error`` is the stable name, ``code`` the number."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.error = str(frame.get("error", "refused"))
        self.code = int(frame.get("code") or frame.get("errcode") or 0)
        self.retry_after = frame.get("retry_after")
        super().__init__(f"{self.error}: {frame.get('msg', '')}")


class LoggedOut(Exception):
    """The token was refused or revoked (HTTP 401, close code 4001): log in again."""


class ClientClosed(Exception):
    """The client was closed while a call waited."""


def backoff_delay(
    attempt: int, base: float = 0.5, cap: float = 30.0, rnd: Callable[[], float] = random.random
) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 = the first retry): half of the
    capped exponential step fixed, half random ("equal jitter"), as the web client."""
    step = min(cap, base * 2.0 ** max(0, min(30, attempt)))
    return step / 2 + rnd() * step / 2


class Client:
    """One user's connection. ``Client.login(...)`` or ``Client(base_url, user_id, token)``,
    then ``await client.start()`` (or ``async with client``)."""

    def __init__(
        self,
        base_url: str,
        user_id: int,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        heartbeat: float = 20.0,
        ack_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.token = token
        self.heartbeat = heartbeat
        self.ack_timeout = ack_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._session = session
        self._own_session = session is None
        # Per conversation: every seq up to ``cursor`` was handled; ``ahead`` holds
        # seqs past a gap that were handled already.
        self.cursor: dict[str, int] = {}
        self._ahead: dict[str, set[int]] = {}
        self._inbox: asyncio.Queue[Frame] = asyncio.Queue()
        self.events: asyncio.Queue[Frame] = asyncio.Queue(maxsize=1000)
        self._outbox: dict[str, tuple[Frame, asyncio.Future[Frame]]] = {}
        self._requests: dict[str, asyncio.Future[Frame]] = {}
        self._rids = itertools.count(1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._opened = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._closed = False
        self.failure: BaseException | None = None
        self.connects = 0  # completed connections (a reconnect adds one)

    # --- life cycle --------------------------------------------------------------

    @classmethod
    async def login(
        cls, base_url: str, mobile: str, password: str, *, session: aiohttp.ClientSession | None = None, **kw: Any
    ) -> Client:
        """Log in with a mobile number and password (``/user/login``)."""
        own = session is None
        http = session or aiohttp.ClientSession()
        try:
            form = {"mobile": mobile, "passwd": password}
            async with http.post(base_url.rstrip("/") + "/user/login", data=form) as r:
                body = await r.json(loads=orjson.loads)
        except BaseException:
            if own:
                await http.close()
            raise
        if body.get("code") != 0:
            if own:
                await http.close()
            raise Refusal(body)
        client = cls(base_url, int(body["data"]["id"]), str(body["data"]["token"]), session=http, **kw)
        client._own_session = own
        return client

    async def start(self, wait: float = 10.0) -> None:
        """Connect (and keep connecting); returns once the first sync is done."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"imhub-client-{self.user_id}")
        opened = asyncio.create_task(self._opened.wait())
        done, _ = await asyncio.wait({opened, self._runner}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if opened not in done:
            opened.cancel()
            failure = self.failure or TimeoutError("could not connect to imhub")
            await self.close()
            raise failure

    async def close(self) -> None:
        self._closed = True
        for task in (self._syncer, self._runner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            await self._ws.close()
        self._fail_waiters(ClientClosed("client closed"))
        if self._own_session and self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._opened.is_set()

    async def drop_connection(self) -> None:
        """Close the socket as if the network failed (the client reconnects): for tests."""
        if self._ws is not None:
            await self._ws.close()

    # --- HTTP --------------------------------------------------------------------

    async def api(self, path: str, **data: Any) -> Any:
        """POST to an HTTP route with the token; ``data`` (or ``rows``) of the reply."""
        assert self._session is not None, "start() the client first, or pass a session"
        form = {k: str(v) for k, v in data.items()}
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._session.post(self.base_url + path, data=form, headers=headers) as r:
            if r.status == 401:
                raise LoggedOut(path)
            body = await r.json(loads=orjson.loads)
        if body.get("code") != 0:
            raise Refusal(body)
        return body.get("rows", body.get("data"))

    # --- sending -----------------------------------------------------------------

    async def send(
        self, dstid: int, content: str = "", *, group: bool = False, media: int = 1, cid: str | None = None,
        give_up_after: float = 60.0, **fields: Any,
    ) -> Frame:
        """Send a message and wait for its ack (``{"id","seq","conv","ts",...}``).

        Resent with the same ``cid`` until acked: after a reconnect, after
        ``ack_timeout`` without an answer, and after a retryable refusal
        (``retry_after``). A refusal that will not change raises :class:`Refusal`."""
        cid = cid or f"py-{uuid.uuid4().hex}"
        frame = {"cmd": 11 if group else 10, "dstid": dstid, "media": media, "content": content, "cid": cid, **fields}
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._outbox[cid] = (frame, fut)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that arrives together with the ack (the bot would not stop).
            async with asyncio.timeout(give_up_after):
                return await self._deliver(cid, frame, fut)
        finally:
            self._outbox.pop(cid, None)

    async def _deliver(self, cid: str, frame: Frame, fut: asyncio.Future[Frame]) -> Frame:
        while True:
            await self._write(frame)
            done, _ = await asyncio.wait({fut}, timeout=self.ack_timeout)
            if not done:
                continue  # no answer: resend, the cid makes it harmless
            reply = fut.result()
            if reply.get("cmd") == 1:
                self._mark_seen(str(reply["conv"]), int(reply["seq"]))
                return reply
            if reply.get("error") not in RETRYABLE:
                raise Refusal(reply)
            await asyncio.sleep(float(reply.get("retry_after") or 1))
            fut = asyncio.get_running_loop().create_future()
            self._outbox[cid] = (frame, fut)

    async def request(self, frame: Frame, wait: float = 10.0) -> Frame:
        """Send a request (sync, history, conversation list, …) and return its reply."""
        return await self._exchange(frame, wait, self._write)

    async def _exchange(self, frame: Frame, wait: float, write: Callable[[Frame], Awaitable[None]]) -> Frame:
        """Write ``frame`` with a fresh ``rid`` and wait for the reply carrying it."""
        rid = f"r{next(self._rids)}"
        fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._requests[rid] = fut
        try:
            await write({**frame, "rid": rid})
            async with asyncio.timeout(wait):
                reply = await fut
        finally:
            self._requests.pop(rid, None)
        if reply.get("cmd") == 2:
            raise Refusal(reply)
        return reply

    async def mark_read(self, conv: str, seq: int) -> None:
        await self._write({"cmd": 23, "conv": conv, "seq": seq})

    async def typing(self, conv: str) -> None:
        await self._write({"cmd": 24, "conv": conv})

    async def _write(self, frame: Frame) -> None:
        while True:
            await self._wait_open()
            ws = self._ws
            if ws is None:
                continue
            try:
                await ws.send_str(orjson.dumps(frame).decode())
                return
            except (ConnectionError, aiohttp.ClientError, RuntimeError):
                await asyncio.sleep(0.05)  # the reader notices the close and reconnects

    async def _wait_open(self) -> None:
        if self._closed:
            raise ClientClosed("client closed")
        if self.failure is not None:
            raise self.failure
        if not self._opened.is_set():
            waiter = asyncio.create_task(self._opened.wait())
            tasks: set[asyncio.Future[Any]] = {waiter}
            if self._runner is not None:
                tasks.add(self._runner)
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self.failure is not None:
                raise self.failure

    # --- receiving ---------------------------------------------------------------

    async def next_message(self, wait: float | None = None) -> Frame:
        """The next chat message (cmd 10/11, group events included), each once."""
        if wait is None:
            return await self._inbox.get()
        async with asyncio.timeout(wait):
            return await self._inbox.get()

    async def messages(self) -> AsyncIterator[Frame]:
        while True:
            yield await self._inbox.get()

    def _mark_seen(self, conv: str, seq: int) -> bool:
        """Record (conv, seq) as handled; False when it was already."""
        cursor = self.cursor.get(conv, 0)
        ahead = self._ahead.setdefault(conv, set())
        if seq <= cursor or seq in ahead:
            return False
        ahead.add(seq)
        while cursor + 1 in ahead:
            cursor += 1
            ahead.discard(cursor)
        self.cursor[conv] = cursor
        return True

    def _take(self, msg: Frame) -> None:
        if self._mark_seen(str(msg["conv"]), int(msg["seq"])):
            self._inbox.put_nowait(msg)

    # --- the connection ----------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                await self._connect_once()
                attempt = 0
            except LoggedOut as exc:
                self.failure = exc
                self._fail_waiters(exc)
                raise
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            self._opened.clear()
            if self._closed:
                return
            await asyncio.sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))
            attempt += 1

    async def _connect_once(self) -> None:
        assert self._session is not None
        params = {"id": str(self.user_id), "token": self.token, "v": "2", "autosync": "0"}
        ws_url = self.base_url.replace("http", "ws", 1) + "/chat"
        try:
            ws = await self._session.ws_connect(ws_url, params=params, timeout=aiohttp.ClientWSTimeout(10))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise LoggedOut("token refused") from exc
            raise
        self._ws = ws
        hb = asyncio.create_task(self._heartbeat(ws))
        reader = asyncio.create_task(self._read(ws))
        try:
            self.connects += 1
            await self._sync_all(ws, reader)
            self._opened.set()
            await reader
        finally:
            self._opened.clear()
            self._ws = None
            hb.cancel()
            reader.cancel()
            for fut in self._requests.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection lost"))
        if ws.close_code == CLOSE_LOGGED_OUT:
            raise LoggedOut("logged out (close code 4001)")

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            with contextlib.suppress(Exception):
                await ws.send_str('{"cmd":0}')

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        idle = 2.5 * self.heartbeat
        while True:
            try:
                msg = await ws.receive(timeout=idle)
            except TimeoutError:
                await ws.close()  # silent for too long: the connection is dead
                return
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            try:
                frame = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(frame, dict):
                self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        cmd = frame.get("cmd")
        rid = frame.get("rid")
        if rid is not None and rid in self._requests:
            fut = self._requests[rid]
            if not fut.done():
                fut.set_result(frame)
            return
        cid = frame.get("cid")
        if cmd in (1, 2) and cid in self._outbox:
            fut = self._outbox[cid][1]
            if not fut.done():
                fut.set_result(frame)
            return
        if cmd in MESSAGE_CMDS and "seq" in frame:
            self._take(frame)
            if self._ahead.get(str(frame["conv"])):
                self._schedule_sync()  # a gap: fetch what is missing
            return
        if cmd == 37:
            self._schedule_sync()
        if cmd == 0:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.events.put_nowait(frame)

    def _schedule_sync(self) -> None:
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.create_task(self._sync_later())

    async def _sync_later(self) -> None:
        ws = self._ws
        with contextlib.suppress(ConnectionError, TimeoutError, Refusal, ClientClosed):
            if ws is not None:
                await self._sync(ws)

    async def _sync_all(self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]) -> None:
        syncing = asyncio.create_task(self._sync(ws))
        await asyncio.wait({syncing, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not syncing.done():
            syncing.cancel()
            raise ConnectionError("closed during sync")
        syncing.result()
        # Unacked messages go out again on the new socket (same cid: stored once).
        for frame, _fut in list(self._outbox.values()):
            await ws.send_str(orjson.dumps(frame).decode())

    async def _ask(self, ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> Frame:
        """A request on ``ws`` itself, before the client counts as open (the sync)."""

        async def write(f: Frame) -> None:
            await ws.send_str(orjson.dumps(f).decode())

        return await self._exchange(frame, 30, write)

    async def _sync(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Catch up: the conversation list, then every message after our cursor. A
        conversation seen for the first time starts at its *delivered* cursor: what this
        user's devices have not received yet."""
        convs = await self._ask(ws, {"cmd": 21})
        after: dict[str, int] = {}
        for c in convs.get("convs", []):
            conv = str(c["conv"])
            if conv not in self.cursor:
                self.cursor[conv] = int(c.get("delivered_seq") or 0)
            if int(c.get("last_seq") or 0) > self.cursor[conv]:
                after[conv] = self.cursor[conv]
        while after:
            page = await self._ask(ws, {"cmd": 20, "after": after})
            for msg in page.get("msgs", []):
                self._take(msg)
            reached = {str(k): int(v) for k, v in page.get("after", {}).items()}
            for conv, seq in reached.items():
                # Everything up to ``seq`` that this user may read was in the pages
                # (a group's history before one's join, for instance, is not).
                if seq > self.cursor.get(conv, 0):
                    self.cursor[conv] = seq
                    self._ahead[conv] = {s for s in self._ahead.get(conv, set()) if s > seq}
            if not page.get("more"):
                break
            after = reached

    def _fail_waiters(self, exc: BaseException) -> None:
        for _frame, fut in self._outbox.values():
            if not fut.done():
                fut.set_exception(exc)
        for fut in self._requests.values():
            if not fut.done():
                fut.set_exception(exc)
