"""examples/echo_bot.py, run as its own process against a spawned server, answers in a
group; a person's Python client sees the echo. Restarting the bot does not echo twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp

from imhub.client import Client
from tests.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


async def register(http: aiohttp.ClientSession, url: str, mobile: str) -> None:
    form = {"mobile": mobile, "passwd": "secret12", "nickname": mobile}
    async with http.post(url + "/user/register", data=form) as r:
        body = await r.json()
    assert body["code"] == 0, body


def start_bot(url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / "bot.log").open("ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "echo_bot.py"), "--url", url,
         "--mobile", "13700000001", "--password", "secret12"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )


async def test_echo_bot_replies_in_a_group(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    bot_proc = None
    try:
        async with aiohttp.ClientSession() as http:
            await register(http, server.url, "13700000001")
            await register(http, server.url, "13700000002")
            human = await Client.login(server.url, "13700000002", "secret12")
            async with human:
                group = await human.api("/contact/createcommunity", name="bots", joinpolicy="open")
                gid = int(group["id"])
                bot_proc = start_bot(server.url, tmp_path)
                bot = await Client.login(server.url, "13700000001", "secret12")
                async with bot:
                    await bot.api("/contact/joincommunity", dstid=gid)
                await human.send(gid, "ping", group=True)
                echo = await _next_text(human, "echo: ping")
                assert echo["userid"] == bot.user_id and echo["conv"] == f"g{gid}"
                # A restarted bot catches up from its delivered cursor but does not
                # repeat a reply (same cid): one echo of "ping" only.
                bot_proc.terminate()
                bot_proc.wait(10)
                bot_proc = start_bot(server.url, tmp_path)
                await human.send(gid, "pong", group=True)
                await _next_text(human, "echo: pong")
                history = await human.request({"cmd": 22, "conv": f"g{gid}"})
                texts = [m["content"] for m in history["msgs"] if m.get("media") == 1]
                bot_log = (tmp_path / "bot.log").read_text()
                assert texts == ["ping", "echo: ping", "pong", "echo: pong"], (texts, bot_log)
    finally:
        if bot_proc is not None:
            bot_proc.terminate()
            bot_proc.wait(10)
        server.stop()


async def _next_text(client: Client, text: str) -> dict[str, object]:
    while True:
        msg = await client.next_message(15)
        if msg.get("content") == text:
            return msg
