"""A steady chat load that survives restarts like a real client: on any close or
timeout it reconnects and resends the unacked message with the same cid."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tests.integration.chatkit import User


@dataclass
class Sender:
    user: User
    to: int
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    close_codes: list[int] = field(default_factory=list)
    reconnects: int = 0

    async def run(self, base_url: str, stop: asyncio.Event, pace: float = 0.06) -> None:
        n = 0
        cid: str | None = None
        async with aiohttp.ClientSession(base_url=base_url) as http:
            while True:
                try:
                    ws = await http.ws_connect(
                        "/chat", params={"id": str(self.user.id), "token": self.user.token, "autosync": "0", "v": "2"},
                        timeout=aiohttp.ClientWSTimeout(ws_close=2),
                    )
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.1)
                    continue
                try:
                    while True:
                        if cid is None:
                            if stop.is_set():
                                return
                            n += 1
                            cid = f"u{self.user.id}-{n}"
                        await ws.send_str(orjson.dumps(
                            {"cmd": 10, "dstid": self.to, "media": 1, "content": cid, "cid": cid}).decode())
                        reply = await self._reply(ws)
                        if reply is None:
                            break  # closed or silent: reconnect, resend the same cid
                        if reply["cmd"] == 1:
                            self.acked[cid] = reply
                            cid = None
                        elif reply.get("error") in ("rate_limited", "overloaded"):
                            await asyncio.sleep(reply.get("retry_after") or 0.5)  # then the same cid
                        else:
                            raise AssertionError(f"refused: {reply}")
                        await asyncio.sleep(pace)
                except (aiohttp.ClientError, OSError, ConnectionResetError):
                    pass
                finally:
                    self.reconnects += 1
                    with contextlib.suppress(Exception):
                        await ws.close()
                    if ws.close_code is not None and not self.close_codes:
                        self.close_codes.append(int(ws.close_code))

    async def _reply(self, ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
        while True:
            try:
                msg = await ws.receive(timeout=5)
            except TimeoutError:
                return None
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    self.close_codes.append(int(msg.data))  # the code the server sent
                return None
            frame: dict[str, Any] = orjson.loads(msg.data)
            if frame.get("cmd") in (1, 2):
                return frame


async def stored_cids(http: aiohttp.ClientSession, user: User, conv: str) -> list[str]:
    """Every cid of ``user`` stored in ``conv``, by paging through sync (cmd 20)."""
    ws = await http.ws_connect("/chat", params={"id": str(user.id), "token": user.token, "autosync": "0", "v": "2"})
    out: list[str] = []
    after = {conv: 0}
    try:
        while True:
            await ws.send_str(orjson.dumps({"cmd": 20, "rid": "s", "after": after, "limit": 200}).decode())
            while True:
                frame = orjson.loads((await ws.receive(timeout=10)).data)
                if frame.get("cmd") == 30:
                    break
            out += [m["cid"] for m in frame["msgs"] if m["userid"] == user.id and m.get("cid")]
            after = frame["after"]
            if not frame["more"]:
                return out
    finally:
        await ws.close()
