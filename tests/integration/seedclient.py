"""A model of the seed's own browser client (../shared/seed/CLIENT.md), for tests that
check imhub serves it without changes.

It does what that page does, and only that: form POSTs read as ``{code,msg,data}``,
an avatar uploaded *before* the account exists (no cookie), login giving ``id`` and
``token`` (plus the session cookie), ``ws://host/chat?id=&token=`` with no other
option, frames sent with ``userid`` and never a ``cid``. On every incoming text frame
containing ``}`` it does what the page does: look ``userid`` up with ``POST /user/find``
(cached per id; a missing one is ``id=NaN``), append the frame to its message list and
clear the draft. What the page would have shown wrongly is recorded instead of thrown
away, so a test can assert there was none.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

# The register page's own check: ^1[3|4|5|7|8][0-9]\d{8}$
_mobiles = itertools.count(random.randrange(1_000_000, 9_000_000) * 100)
SEED_MEDIA = frozenset({1, 3, 4})  # text, voice, image: all it can draw


def seed_mobile() -> str:
    return f"137{next(_mobiles) % 10**8:08d}"


@dataclass
class Entry:
    """One entry of the page's message list: a frame it received (or its own echo)."""

    frame: dict[str, Any]
    local: bool = False  # its own message, shown at once when sent
    spurious: str = ""  # why the page would show it wrongly ("" = a proper message)

    @property
    def conv(self) -> str:
        """The conversation as the page sees it (from cmd, userid and dstid)."""
        f = self.frame
        if f.get("cmd") == 11:
            return f"g{f.get('dstid')}"
        a, b = sorted((int(f.get("userid") or 0), int(f.get("dstid") or 0)))
        return f"p{a}_{b}"

    @property
    def text(self) -> str:
        """What the bubble shows: the text, or the media URL."""
        f = self.frame
        return str(f.get("content") or "") if f.get("media") == 1 else str(f.get("url") or "")


@dataclass
class SeedClient:
    base_url: str
    http: aiohttp.ClientSession = field(init=False)
    id: int = 0
    token: str = ""
    mobile: str = ""
    friends: set[int] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    open_chat: tuple[int, int] = (0, 0)  # (cmd, dstid) of the chat on screen
    entries: list[Entry] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)  # frames without '}': only logged
    draft: str = ""
    drafts_cleared: int = 0
    user_cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    ws: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # A browser keeps the cookie of a server reached by IP address too, and names
        # the page's origin on every POST and on the WebSocket handshake.
        self.http = aiohttp.ClientSession(
            self.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": self.base_url.rstrip("/")}
        )

    async def aclose(self) -> None:
        await self.close_page()
        await self.http.close()

    # --- HTTP, as util.js does it ---------------------------------------------------

    async def post(self, path: str, **form: Any) -> dict[str, Any]:
        """A form POST; anything but HTTP 200 with ``code 0`` is recorded as failed
        (the page ignores a non-200 silently and toasts ``msg`` for a non-zero code)."""
        r = await self.http.post(path, data={k: str(v) for k, v in form.items()})
        try:
            body: dict[str, Any] = await r.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = {}
        if r.status != 200 or body.get("code") != 0:
            self.failed_requests.append(f"{path} {form} -> HTTP {r.status} {body}")
        return body

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        """``POST /attach/upload`` (multipart, field ``file``); the URL, or "" if refused."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type=content_type)
        r = await self.http.post("/attach/upload", data=form)
        try:
            body: dict[str, Any] = await r.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = {}
        if r.status != 200 or body.get("code") != 0:
            self.failed_requests.append(f"/attach/upload {filename} -> HTTP {r.status} {body}")
            return ""
        return str(body.get("data") or "")

    # --- the pages ------------------------------------------------------------------

    async def register(self, passwd: str = "secret12", nickname: str = "", avatar: bytes | None = None) -> str:
        """The register page: avatar first (no account, no cookie yet), then the form.
        Returns the avatar URL it put into the form ("" if none)."""
        self.mobile = seed_mobile()
        url = await self.upload(avatar, "avatar.png", "image/png") if avatar is not None else ""
        form = {"mobile": self.mobile, "passwd": passwd, "passwdr": passwd, "memo": "", "avatar": url, "sex": "U"}
        if nickname:
            form["nickname"] = nickname
        await self.post("/user/register", **form)
        return url

    async def login(self, passwd: str = "secret12") -> None:
        body = await self.post("/user/login", mobile=self.mobile, passwd=passwd)
        self.id, self.token = int(body["data"]["id"]), str(body["data"]["token"])

    async def open_chat_page(self) -> None:
        """``/chat/index.shtml?id=&token=``: load friends and groups, open the socket."""
        await self.load_contacts()
        self.ws = await self.http.ws_connect("/chat", params={"id": str(self.id), "token": self.token})
        self._reader = asyncio.create_task(self._read_forever())

    async def load_contacts(self) -> None:
        friends = await self.post("/contact/loadfriend", userid=self.id)
        self.friends = {int(u["id"]) for u in friends.get("rows") or []}
        groups = await self.post("/contact/loadcommunity", userid=self.id)
        self.groups = {int(g["id"]) for g in groups.get("rows") or []}

    async def add_friend(self, dstid: int) -> None:
        await self.post("/contact/addfriend", dstid=dstid, userid=self.id)
        await self.load_contacts()

    async def join_group(self, dstid: int) -> None:
        await self.post("/contact/joincommunity", dstid=dstid, userid=self.id)
        await self.load_contacts()

    async def close_page(self) -> None:
        """A reload or a closed tab: the socket goes, with whatever it was given read
        (the close handshake: every frame the server wrote before it is kept)."""
        late: list[str] = []
        if self.ws is not None and not self.ws.closed:
            await close_reading(self.ws, late.append)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for data in late:  # the page had them before it went
            await self.on_text(data)
        self.ws, self._reader = None, None

    # --- the socket -----------------------------------------------------------------

    async def send(self, cmd: int, dstid: int, media: int, **body: Any) -> None:
        """Exactly the page's frame: userid, no cid; shown at once, no ack expected."""
        assert self.ws is not None
        frame = {"dstid": dstid, "cmd": cmd, "userid": self.id, "media": media, **body}
        await self.ws.send_str(orjson.dumps(frame).decode())
        self.entries.append(Entry(frame, local=True))

    async def _read_forever(self) -> None:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            await self.on_text(msg.data)

    async def on_text(self, data: str) -> None:
        if "}" not in data:
            self.logged.append(data)
            return
        frame = orjson.loads(data)
        userid = frame.get("userid") if isinstance(frame, dict) else None
        await self.find_user("NaN" if userid is None else str(userid))
        entry = Entry(frame if isinstance(frame, dict) else {"raw": frame}, spurious=self.judge(frame))
        self.entries.append(entry)
        # The page clears the input box (and closes the panels) on every such frame.
        self.draft = ""
        self.drafts_cleared += 1
        self._arrived.set()

    async def find_user(self, ident: str) -> None:
        if ident in self.user_cache:
            return
        body = await self.post("/user/find", id=ident)
        if body.get("code") == 0:
            self.user_cache[ident] = body.get("data") or {}

    def judge(self, frame: Any) -> str:
        """Why the page would draw this frame wrongly, or "" for a proper message. (Whether
        it belongs to one of its chats is judged later, by :meth:`misplaced`: the page
        filters its list when it draws, and a join's own event may come before the
        group list is reloaded.)"""
        if not isinstance(frame, dict):
            return "not an object"
        cmd, media = frame.get("cmd"), frame.get("media")
        if cmd not in (10, 11):
            return f"cmd {cmd} is not a chat message"
        if "userid" not in frame:
            return "no userid"
        if media not in SEED_MEDIA:
            return f"media {media} draws as an empty bubble"
        if media == 1 and not str(frame.get("content") or "").strip():
            return "empty text bubble"
        if media in (3, 4) and not frame.get("url"):
            return "voice/image without url"
        return ""

    def misplaced(self, entry: Entry) -> str:
        """Why no chat of the page would ever show ``entry``, or ""."""
        f = entry.frame
        cmd, dstid = f.get("cmd"), f.get("dstid")
        if cmd == 10 and dstid != self.id and dstid not in self.friends:
            return f"private message to {dstid}: in no chat of this page"
        if cmd == 11 and dstid not in self.groups:
            return f"group message to {dstid}: not one of its groups"
        return ""

    def shown_in_open_chat(self, entry: Entry) -> bool:
        """The page's own filter of the list for the chat on screen."""
        f = entry.frame
        cmd, dstid = self.open_chat
        if f.get("cmd") != cmd:
            return False
        if cmd == 10:
            return f.get("dstid") in (dstid, self.id)
        return bool(f.get("dstid") == dstid)

    # --- for assertions -------------------------------------------------------------

    def received(self) -> list[Entry]:
        return [e for e in self.entries if not e.local]

    def spurious(self) -> list[tuple[str, dict[str, Any]]]:
        """(why, frame) of every entry the page would draw wrongly or never."""
        out = []
        for e in self.entries:
            why = e.spurious or ("" if e.local else self.misplaced(e))
            if why:
                out.append((why, e.frame))
        return out

    @property
    def drafts_cleared_by_junk(self) -> int:
        """Each received entry cleared the draft; these ones should never have come."""
        return sum(1 for e in self.entries if not e.local and (e.spurious or self.misplaced(e)))

    def frames_in(self, conv: str) -> int:
        """How many received frames (proper or not) belong to ``conv``."""
        return sum(1 for e in self.entries if not e.local and e.conv == conv)

    def conversation(self, conv: str) -> list[Entry]:
        """The entries of one conversation, in the order the page got them."""
        return [e for e in self.entries if not e.spurious and e.conv == conv]

    async def wait_for(self, pred: Callable[[SeedClient], bool], timeout: float = 10.0) -> None:
        """Wait until ``pred(self)`` holds (re-checked on each arriving frame)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred(self):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out; received: {[e.frame for e in self.received()][-10:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, 0.5))


async def close_reading(ws: aiohttp.ClientWebSocketResponse, on_text: Callable[[str], None]) -> None:
    """Close ``ws`` with the close handshake, handing every text frame that arrives
    before the server's close reply to ``on_text``.

    aiohttp's own ``close()`` reads and discards what comes before the reply; a test
    counting lost messages must see them (the server wrote them and counts them as
    delivered). So the socket's frame queue is tapped for the duration."""
    inner = ws._reader
    ws._reader = _Tap(inner, on_text)  # type: ignore[assignment]
    try:
        await ws.close()
    finally:
        ws._reader = inner


class _Tap:
    """A frame queue that shows each text frame read from it to ``on_text``."""

    def __init__(self, inner: Any, on_text: Callable[[str], None]) -> None:
        self.inner, self.on_text = inner, on_text

    async def read(self) -> aiohttp.WSMessage:
        msg: aiohttp.WSMessage = await self.inner.read()
        if msg.type == aiohttp.WSMsgType.TEXT:
            self.on_text(msg.data)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
