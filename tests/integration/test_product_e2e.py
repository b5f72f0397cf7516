"""Issue #20's "done when": a test that plays a product embedding imhub. Its back end
provisions two users by ext_id and gets them tokens (server API); one connects with the
JavaScript SDK (Node), the other with the Python client; they talk in a group the
product created; the product's webhook receiver gets every message (signatures
verified); and when the Python user has gone offline, their browser gets a Web Push."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from imhub.client import Client
from imhub.config import Settings
from imhub.store.migrate import migrate
from imhub.web.context import SERVICES
from tests.integration.serverapi import call, make_key, provisioned
from tests.integration.test_js_sdk import PEER, node_command
from tests.integration.test_web_push import Browser, b64url
from tests.integration.test_webhooks import FAST, running
from tests.integration.webhookkit import Receiver
from tests.serverproc import free_port


async def test_a_product_embeds_imhub(tmp_path: Path) -> None:
    node = node_command()
    settings = Settings(data_dir=tmp_path / "data", push_allow_http=True, **FAST)  # type: ignore[arg-type]
    await migrate(settings.effective_database_url)
    pushes: asyncio.Queue[bytes] = asyncio.Queue()

    async def push_service(request: web.Request) -> web.Response:
        pushes.put_nowait(await request.read())
        return web.Response(status=201)

    push_app = web.Application()
    push_app.router.add_post("/push/{token}", push_service)
    hooks = Receiver("", free_port())
    async with running(settings) as client, TestServer(push_app) as push_server:
        svc = client.server.app[SERVICES]
        _, hooks.secret = await svc.webhooks.add(hooks.url, "message.stored")
        await svc.webhooks.refresh()
        await hooks.start()
        try:
            # The product's back end: users by its own ids, a group, login tokens.
            key = await make_key(client)
            ann = await provisioned(client, key, "shop-ann", "Ann")
            bob = await provisioned(client, key, "shop-bob", "Bob")
            status, g = await call(
                client, key, "POST", "/groups", {"owner": "shop-ann", "name": "Order 4711", "members": ["shop-bob"]}
            )
            assert status == 200, g
            conv = f"g{g['data']['id']}"
            base = str(client.make_url("")).rstrip("/")

            # Bob's browser opted in to Web Push (what the SPA's Me tab does).
            browser = Browser()
            form = {"endpoint": str(push_server.make_url("/push/bob")), "p256dh": browser.p256dh,
                    "auth": b64url(browser.auth)}
            r = await client.post("/push/subscribe", data=form, headers=bob.auth)
            assert (await r.json())["code"] == 0

            # Ann on the JS SDK (Node), Bob on the Python client.
            async with Client(base, bob.id, bob.token) as py:
                proc = await asyncio.create_subprocess_exec(
                    *node, str(PEER), base, str(ann.id), ann.token, conv,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )
                got = await py.next_message(30)
                while got.get("media") != 1:  # the group's "created"/"joined" events come first
                    got = await py.next_message(30)
                assert (got["userid"], got["content"], got["conv"]) == (ann.id, "hi from js", conv)
                await py.send(g["data"]["id"], "thanks, bye", group=True)
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
                assert proc.returncode == 0, out.decode()
                lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
                assert any(x.get("message", {}).get("content") == "thanks, bye" for x in lines), lines
            # Bob is offline now: the product's system message reaches his browser as a push.
            for _ in range(200):
                if not await svc.presence.is_online(bob.id):
                    break
                await asyncio.sleep(0.02)
            status, sent = await call(
                client, key, "POST", "/messages", {"to_group": g["data"]["id"], "cid": "shipped", "content": "Shipped"}
            )
            assert status == 200, sent
            payload = browser.decrypt(await asyncio.wait_for(pushes.get(), 15))
            assert payload["conv"] == conv and payload["count"] >= 1
            # Every message reached the product's webhook, signed (Receiver checks it), in order.
            texts = ["hi from js", "thanks, bye", "Shipped"]
            await hooks.wait_for(lambda: len([e for e in hooks.of("message.stored", conv=conv)
                                              if e["data"].get("content") in texts]) == 3)
            stored = [e["data"]["content"] for e in hooks.of("message.stored", conv=conv)
                      if e["data"].get("content") in texts]
            assert stored == texts and hooks.rejected_signatures == 0
        finally:
            await hooks.stop()
