"""Security checks that span the app: per-address connection limit, security headers
on every page and API reply, and cross-site WebSocket hijacking refused."""

from __future__ import annotations

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from tests.integration.chatkit import connect, make_user


@pytest.fixture
async def limited_client(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_connections_per_ip=2)
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        yield c


async def test_connections_per_address_are_limited(limited_client) -> None:
    a, b = await make_user(limited_client), await make_user(limited_client)
    first, second = await connect(limited_client, a), await connect(limited_client, b)
    with pytest.raises(WSServerHandshakeError) as refused:
        await limited_client.ws_connect("/chat", params={"id": str(a.id), "token": a.token})
    assert refused.value.status == 429
    await first.close()
    third = await connect(limited_client, a)  # a slot is free again
    await third.send(cmd=0)
    assert (await third.recv_until(lambda f: f.get("cmd") == 0))["cmd"] == 0
    await second.close()
    await third.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/user/login.shtml"),
        ("GET", "/chat/index.shtml"),
        ("GET", "/openapi.json"),
        ("POST", "/user/login"),
        ("POST", "/contact/loadfriend"),
        ("GET", "/no/such/page"),
    ],
)
async def test_security_headers_everywhere(client, method: str, path: str) -> None:
    r = await client.request(method, path, allow_redirects=False)
    h = r.headers
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "script-src 'self'" in h["Content-Security-Policy"]
    assert h["X-Frame-Options"] == "DENY"
    assert h["Referrer-Policy"] == "same-origin"


async def test_cross_site_websocket_refused_same_origin_allowed(client) -> None:
    a = await make_user(client)
    params = {"id": str(a.id), "token": a.token}
    with pytest.raises(WSServerHandshakeError) as e:
        await client.ws_connect("/chat", params=params, headers={"Origin": "https://evil.example"})
    assert e.value.status == 403
    host = f"{client.server.host}:{client.server.port}"
    ws = await client.ws_connect("/chat", params=params, headers={"Origin": f"http://{host}"})
    await ws.close()


async def test_allowed_origin_setting(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", allowed_origins=["https://app.example"])
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        a = await make_user(c)
        ws = await c.ws_connect(
            "/chat", params={"id": str(a.id), "token": a.token}, headers={"Origin": "https://app.example"}
        )
        await ws.close()


@pytest.fixture
async def strict_client(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", send_burst=4, send_rate_per_second=0.5)
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        yield c


async def test_message_rate_limit_is_per_user_not_per_tab(strict_client) -> None:
    from tests.integration.chatkit import befriend

    a, b = await make_user(strict_client), await make_user(strict_client)
    await befriend(strict_client, a, b)
    tab1, tab2 = await connect(strict_client, a), await connect(strict_client, a)
    outcomes = []
    for i in range(6):  # alternate tabs: a burst of 4 for the user, not 4 per tab
        tab = (tab1, tab2)[i % 2]
        await tab.send(cmd=10, dstid=b.id, media=1, content=f"m{i}", cid=f"r{i}")
        outcomes.append((await tab.reply())["cmd"])
    assert outcomes == [1, 1, 1, 1, 2, 2]
    err = tab1.frames[-1] if tab1.frames[-1]["cmd"] == 2 else tab2.frames[-1]
    assert err["error"] == "rate_limited" and err["code"] == 4290
