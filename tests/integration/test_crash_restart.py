"""Killing the server (SIGKILL) loses no acknowledged message."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from tests.serverproc import ServerProcess


async def _post(http: aiohttp.ClientSession, url: str, **data: object) -> dict:
    async with http.post(url, data={k: str(v) for k, v in data.items()}) as r:
        return await r.json()


async def _user(http: aiohttp.ClientSession, base: str, mobile: str) -> tuple[int, str]:
    await _post(http, base + "/user/register", mobile=mobile, passwd="secret12")
    body = await _post(http, base + "/user/login", mobile=mobile, passwd="secret12")
    assert body["code"] == 0, body
    return body["data"]["id"], body["data"]["token"]


async def test_sigkill_loses_no_acked_message(tmp_path) -> None:
    # Open friend policy: this test is about durability, one addfriend is enough.
    server = ServerProcess(tmp_path / "data", IMHUB_FRIEND_POLICY="open").start()
    try:
        async with aiohttp.ClientSession() as http:
            a_id, a_tok = await _user(http, server.url, "13700000001")
            b_id, b_tok = await _user(http, server.url, "13700000002")
            async with http.post(
                server.url + "/contact/addfriend", data={"dstid": str(b_id)},
                headers={"Authorization": f"Bearer {a_tok}"},
            ) as r:
                body = await r.json()
                assert body["code"] == 0, body
            ws = await http.ws_connect(f"{server.url}/chat?id={a_id}&token={a_tok}&v=2")
            acked: dict[str, int] = {}

            async def reader() -> None:
                async for msg in ws:
                    frame = orjson.loads(msg.data)
                    if frame.get("cmd") == 1:
                        acked[frame["cid"]] = frame["seq"]

            task = asyncio.create_task(reader())
            # A steady stream (under the per-connection rate limit), killed mid-stream.
            for i in range(40):
                await ws.send_str(orjson.dumps({"cmd": 10, "dstid": b_id, "media": 1, "content": f"m{i}",
                                                "cid": f"c{i}"}).decode())
                await asyncio.sleep(0.01)
            server.kill()
            await asyncio.wait_for(task, 10)
        assert acked, "some messages should have been acked before the kill"
        server.start()
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{server.url}/chat?id={b_id}&token={b_tok}&autosync=0&v=2")
            conv = f"p{min(a_id, b_id)}_{max(a_id, b_id)}"
            await ws.send_str(orjson.dumps({"cmd": 20, "after": {conv: 0}, "limit": 200}).decode())
            stored: dict[str, int] = {}
            while True:
                page = orjson.loads((await ws.receive(timeout=10)).data)
                if page.get("cmd") != 30:
                    continue
                stored.update({m["cid"]: m["seq"] for m in page["msgs"]})
                if not page["more"]:
                    break
                await ws.send_str(orjson.dumps({"cmd": 20, "after": page["after"], "limit": 200}).decode())
            await ws.close()
        lost = {cid for cid in acked if cid not in stored}
        assert lost == set()
        assert all(stored[cid] == seq for cid, seq in acked.items())
        assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # gapless
    finally:
        server.stop()
