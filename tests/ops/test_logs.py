"""Structured logs: JSON lines, one per connection open/close and per HTTP request,
refusals with their code; tokens and passwords never logged."""

from __future__ import annotations

import json

import aiohttp

from tests.integration.chatkit import api, connect, make_user
from tests.serverproc import ServerProcess


def log_lines(server: ServerProcess) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for line in server.log_path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


async def test_tokens_and_passwords_never_logged(server: ServerProcess) -> None:
    async with aiohttp.ClientSession(base_url=server.url) as http:
        user = await make_user(http)  # type: ignore[arg-type]  # registers + logs in with "secret12"
        sock = await connect(http, user)  # type: ignore[arg-type]  # GET /chat?id=..&token=..
        await sock.send(cmd=10, dstid=user.id, media=1, content="x")
        await sock.recv()
        await sock.close()
        r = await http.get("/chat", params={"id": str(user.id), "token": "wrong-token-abcdef"})
        assert r.status == 401
        body = await api(http, "/user/login", mobile=user.mobile, passwd="not-the-password")  # type: ignore[arg-type]
        assert body["code"] == -1
        await http.post("/user/me", headers={"Authorization": f"Bearer {user.token}"})
    server.stop()

    text = server.log_path.read_text()
    for secret in (user.token, "wrong-token-abcdef", "secret12", "not-the-password"):
        assert secret not in text, f"{secret!r} leaked into the log"

    lines = log_lines(server)
    access = [entry for entry in lines if entry.get("event") == "request"]
    chat = [entry for entry in access if entry["path"].startswith("/chat")]
    assert chat and all("token=[redacted]" in entry["path"] for entry in chat)
    assert {entry["status"] for entry in chat} >= {101, 401}
    assert any(entry["path"] == "/user/login" and entry["status"] == 200 for entry in access)
    opened = [entry for entry in lines if entry.get("event") == "connection open"]
    closed = [entry for entry in lines if entry.get("event") == "connection closed"]
    assert [entry["user"] for entry in opened] == [user.id]
    assert closed and closed[0]["user"] == user.id and "reason" in closed[0] and "code" in closed[0]
    refused = [entry for entry in lines if entry.get("event") == "handshake refused"]
    assert refused and refused[0]["reason"] == "token" and refused[0]["status"] == 401
    assert any(entry.get("event") == "request refused" and entry.get("status") == 401 for entry in lines)
    assert all("level" in entry and "timestamp" in entry for entry in lines)
