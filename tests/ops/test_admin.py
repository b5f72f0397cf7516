"""``imhub admin`` end to end: the CLI against a real server process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import aiohttp

from tests.integration.chatkit import Socket, api, befriend, connect, make_group, make_user
from tests.ops.conftest import ADMIN_TOKEN
from tests.serverproc import ServerProcess, free_port


async def admin(server: ServerProcess | None, *args: str, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess[str]:
    url = server.url if server else f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "IMHUB_ADMIN_TOKEN": token}
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "imhub", "admin", "--url", url, *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


async def close_code(sock: Socket, timeout: float = 15.0) -> int | None:
    """Read until the server closes the socket; the code it closed with. The timeout only
    guards against a hang (CI seen: over 5 s for the ban path on a box with load 12)."""
    deadline = asyncio.get_running_loop().time() + timeout
    with contextlib.suppress(aiohttp.ClientError):
        while not sock.ws.closed and asyncio.get_running_loop().time() < deadline:
            msg = await sock.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return int(msg.data)  # the code in the server's close frame
            if msg.type == aiohttp.WSMsgType.CLOSED:
                break
    return sock.ws.close_code


async def test_admin_commands(server: ServerProcess) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        a, b, c = await make_user(http), await make_user(http), await make_user(http)  # type: ignore[arg-type]
        await befriend(http, a, b)  # type: ignore[arg-type]
        gid = await make_group(http, a, b)  # type: ignore[arg-type]
        sa = await connect(http, a, autosync=0)  # type: ignore[arg-type]
        sb = await connect(http, b, autosync=0)  # type: ignore[arg-type]

        r = await admin(server, "online")
        assert r.returncode == 0, r.stderr
        online = {int(x) for x in r.stdout.split()}
        assert {a.id, b.id} <= online and c.id not in online
        assert "2 online" in r.stderr

        r = await admin(server, "stats")
        assert r.returncode == 0, r.stderr
        assert "connections_here" in r.stdout and "online_users" in r.stdout

        # A notice to a user: live, to every connection of theirs.
        r = await admin(server, "notice", "--user", str(a.id), "maintenance at 22:00")
        assert r.returncode == 0, r.stderr
        notice = await sa.recv_until(lambda f: f.get("cmd") == 40)
        assert notice["text"] == "maintenance at 22:00" and notice["ts"] > 0
        # ... to an offline user: said so, exit 1.
        r = await admin(server, "notice", "--user", str(c.id), "hello")
        assert r.returncode == 1 and "not online" in r.stderr

        # A notice to a group: a stored media-10 event, content "system".
        r = await admin(server, "notice", "--group", str(gid), "welcome everyone")
        assert r.returncode == 0, r.stderr
        event = await sb.recv_until(lambda f: f.get("cmd") == 11 and f.get("media") == 10)
        assert event["content"] == "system" and event["memo"] == "welcome everyone" and event["userid"] == 0
        assert event["seq"] >= 1

        # Kick: b's socket closes with 4002; b may come back with the same token.
        r = await admin(server, "kick", str(b.id))
        assert r.returncode == 0 and "connections closed" in r.stdout, r.stderr
        assert await close_code(sb) == 4002
        sb = await connect(http, b, autosync=0)  # type: ignore[arg-type]
        await sb.close()

        # Ban: socket closed (4001), tokens revoked, login refused; unban restores login.
        r = await admin(server, "ban", str(a.id))
        assert r.returncode == 0, r.stderr
        assert await close_code(sa) == 4001
        me = await http.post("/user/me", headers=a.auth)
        assert me.status == 401
        login = await api(http, "/user/login", mobile=a.mobile, passwd="secret12")  # type: ignore[arg-type]
        assert login["code"] == -1 and "banned" in login["msg"]
        r = await admin(server, "unban", str(a.id))
        assert r.returncode == 0, r.stderr
        login = await api(http, "/user/login", mobile=a.mobile, passwd="secret12")  # type: ignore[arg-type]
        assert login["code"] == 0

    # Unknown targets and bad calls: a clear message, exit 1.
    for args, expect in [
        (("kick", "999999"), "no user 999999"),
        (("ban", "999999"), "no user 999999"),
        (("notice", "--group", "999999", "x"), "no group 999999"),
        (("notice", "--user", "999999", "x"), "no user 999999"),
        (("notice", "x"), "exactly one of --user or --group"),
        (("notice", "--user", str(b.id), " "), "text is required"),
    ]:
        r = await admin(server, *args)
        assert r.returncode == 1 and expect in r.stderr, (args, r.stderr)
    r = await admin(server, "online", token="wrong-but-long-enough-" * 2)
    assert r.returncode == 1 and "admin token required" in r.stderr
    r = await admin(server, "online", token="short")  # refused before asking the server
    assert r.returncode == 2 and "at least 32 characters" in r.stderr
    r = await admin(server, "online", token="")
    assert r.returncode == 1 and "IMHUB_ADMIN_TOKEN" in r.stderr
    r = await admin(None, "online")
    assert r.returncode == 1 and "cannot reach the server" in r.stderr


async def test_admin_api_is_off_without_a_token(client) -> None:
    r = await client.get("/admin/online", headers={"Authorization": "Bearer anything"})
    assert r.status == 404
    assert "IMHUB_ADMIN_TOKEN" in (await r.json())["msg"]
