"""Web Push with ``imhub serve --workers 2`` on a Redis bus: each message is pushed once
(by the worker that stored it, not once per worker), both workers use the one VAPID
key created at first start, and a recipient connected to either worker gets no push
(presence is shared through Redis)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from imhub.client import Client
from tests.conftest import redis_or_skip
from tests.integration.test_web_push import Browser, b64url
from tests.serverproc import ServerProcess


async def until_skipped_online(url: str, count: int) -> None:
    """Wait until the workers' /metrics count ``count`` pushes skipped for an online user."""
    got = 0.0
    for _ in range(500):
        async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
            text = await r.text()
        got = sum(float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith("imhub_push_skipped_online_total"))
        if got >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"push workers skipped {got} of {count} messages to an online user")


async def test_each_message_is_pushed_once_with_two_workers(tmp_path: Path) -> None:
    pushes: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        pushes.put_nowait((request.headers["Authorization"], await request.read()))
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/push/{token}", receive)
    server = ServerProcess(
        tmp_path / "data", IMHUB_WORKERS="2", IMHUB_BUS="redis", IMHUB_REDIS_URL=redis_or_skip(),
        IMHUB_REDIS_PREFIX=f"t{uuid.uuid4().hex[:10]}", IMHUB_PUSH_ALLOW_HTTP="true",
        IMHUB_FRIEND_POLICY="open",
    )
    async with TestServer(app) as receiver:
        server.start()
        try:
            async with aiohttp.ClientSession() as http:
                users = []
                for mobile in ("13500000001", "13500000002"):
                    form = {"mobile": mobile, "passwd": "secret12"}
                    await http.post(server.url + "/user/register", data=form)
                    async with http.post(server.url + "/user/login", data=form) as r:
                        users.append((await r.json())["data"])
                sender, rcpt = users
                bearer = {"Authorization": f"Bearer {rcpt['token']}"}
                await http.post(server.url + "/contact/addfriend", data={"dstid": sender["id"]}, headers=bearer)
                browser = Browser()
                form = {"endpoint": str(receiver.make_url("/push/b1")), "p256dh": browser.p256dh,
                        "auth": b64url(browser.auth)}
                async with http.post(server.url + "/push/subscribe", data=form, headers=bearer) as r:
                    assert (await r.json())["code"] == 0
            # Several sender connections, so that both workers store some of the messages.
            senders = [Client(server.url, sender["id"], sender["token"]) for _ in range(4)]
            for c in senders:
                await c.start()
            try:
                n = 12
                await asyncio.gather(*(senders[i % 4].send(rcpt["id"], f"m{i}") for i in range(n)))
                got = [await asyncio.wait_for(pushes.get(), 15) for _ in range(n)]
                assert sorted(browser.decrypt(body)["count"] for _, body in got) == list(range(1, n + 1))
                assert len({auth.split("k=")[1] for auth, _ in got}) == 1  # one VAPID key on both workers
                # Connected (to whichever worker): nothing pushed, whichever worker stores.
                async with Client(server.url, rcpt["id"], rcpt["token"]) as online:
                    await until_online(senders[0], rcpt["id"], True)
                    await asyncio.gather(*(senders[i % 4].send(rcpt["id"], f"online {i}") for i in range(4)))
                    for _ in range(n + 4):
                        await online.next_message(10)
                    # The push workers decide when they get to a message, not when it is
                    # stored: stay online until they have passed all four (a slow worker
                    # would otherwise find the user gone and push one).
                    await until_skipped_online(server.url, 4)
                await until_online(senders[0], rcpt["id"], False)
                await senders[0].send(rcpt["id"], "offline again")
                _, body = await asyncio.wait_for(pushes.get(), 15)
                assert browser.decrypt(body)["count"] == n + 5
                assert pushes.empty()
            finally:
                for c in senders:
                    await c.close()
        finally:
            server.stop()


async def until_online(friend: Client, user_id: int, online: bool) -> None:
    """Wait until presence (Redis, both workers) says so; a friend sees it in /user/find."""
    for _ in range(100):
        if (await friend.api("/user/find", id=user_id))["online"] is online:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"user {user_id} never became online={online}")
