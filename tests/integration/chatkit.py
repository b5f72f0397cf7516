"""Helpers for tests that talk to a running imhub like a real client would."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestClient

_mobiles = itertools.count(13900000000)


@dataclass
class User:
    id: int
    token: str
    mobile: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def api(client: TestClient, path: str, user: User | None = None, **data: Any) -> dict[str, Any]:
    r = await client.post(path, data={k: str(v) for k, v in data.items()}, headers=user.auth if user else None)
    body: dict[str, Any] = await r.json()
    return body


async def make_user(client: TestClient, nickname: str = "") -> User:
    mobile = str(next(_mobiles))
    body = await api(client, "/user/register", mobile=mobile, passwd="secret12", nickname=nickname or mobile)
    assert body["code"] == 0, body
    body = await api(client, "/user/login", mobile=mobile, passwd="secret12")
    assert body["code"] == 0, body
    return User(body["data"]["id"], body["data"]["token"], mobile)


async def befriend(client: TestClient, a: User, b: User) -> None:
    """``a`` asks, ``b`` accepts (the default friend policy, ``request``)."""
    body = await api(client, "/contact/addfriend", a, userid=a.id, dstid=b.id)
    assert body["code"] == 0 and body["data"]["request"]["status"] == "pending", body
    accepted = await api(client, "/contact/acceptfriend", b, id=body["data"]["request"]["id"])
    assert accepted["code"] == 0 and accepted["data"]["id"] == a.id, accepted


async def make_group(
    client: TestClient, owner: User, *members: User, name: str = "team", **settings: str
) -> int:
    """A group (server defaults unless ``joinpolicy``/``visibility`` are given) with
    ``members`` in it: each asks to join and the owner approves (or, in an ``open``
    group, joins)."""
    body = await api(client, "/contact/createcommunity", owner, ownerid=owner.id, name=name, **settings)
    assert body["code"] == 0, body
    gid = int(body["data"]["id"])
    for m in members:
        await join_group(client, owner, m, gid)
    return gid


async def join_group(client: TestClient, owner: User, member: User, gid: int) -> None:
    joined = await api(client, "/contact/joincommunity", member, userid=member.id, dstid=gid)
    assert joined["code"] == 0, joined
    if joined["data"].get("pending"):
        approved = await api(client, "/contact/approvejoin", owner, dstid=gid, memberid=member.id)
        assert approved["code"] == 0, approved


class Socket:
    """A WebSocket client that keeps every frame it got, for assertions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._early: list[dict[str, Any]] = []

    async def ready(self) -> None:
        """Wait until the server has registered this socket (a heartbeat round trip:
        the server reads frames only after registering). Frames that arrived first
        (the offline backlog) are kept for :meth:`recv`."""
        await self.send(cmd=0)
        while True:
            frame = await self._read(5.0)
            if frame.get("cmd") == 0 and "ts" in frame:
                return
            self._early.append(frame)

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        if self._early:
            frame = self._early.pop(0)
            self.frames.append(frame)
            return frame
        frame = await self._read(timeout)
        self.frames.append(frame)
        return frame

    async def _read(self, timeout: float) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
        frame: dict[str, Any] = orjson.loads(msg.data)
        return frame

    async def recv_until(self, pred: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(timeout=max(0.01, left))
            if pred(frame):
                return frame

    async def reply(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next ack or error, skipping events (receipts, presence, typing)."""
        return await self.recv_until(lambda f: f.get("cmd") in (1, 2), timeout)

    async def no_frame(self, within: float = 0.3) -> None:
        assert not self._early, f"unexpected frame {self._early[0]!r}"
        try:
            msg = await self.ws.receive(timeout=within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {msg.data!r}")

    async def recv_close(self, timeout: float = 5.0) -> aiohttp.WSMessage:
        """Skip frames until the close frame arrives."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return msg

    async def close(self) -> None:
        await self.ws.close()


async def connect(client: TestClient, user: User, **query: Any) -> Socket:
    """A modern client (``v=2``) unless the query says otherwise (``v=""``: a seed client)."""
    params = {"id": str(user.id), "token": user.token, "v": "2", **{k: str(v) for k, v in query.items()}}
    params = {k: v for k, v in params.items() if v != ""}
    ws = await client.ws_connect("/chat", params=params)
    sock = Socket(ws)
    await sock.ready()
    return sock


def is_msg(frame: dict[str, Any]) -> bool:
    """A chat message (not a group event, media 10)."""
    return frame.get("cmd") in (10, 11) and "seq" in frame and frame.get("media") != 10
