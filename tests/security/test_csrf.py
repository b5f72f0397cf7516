"""Cross-site request forgery (issue #16 item 1). ``SameSite=Lax`` stops other *sites*,
not a page on another port of the same host or a sibling subdomain (they are
"same-site"): every write that the session cookie authenticates must prove with
``Origin`` (or ``Sec-Fetch-Site``/``Referer``) that it comes from this origin or an
allowed one. Bearer-token calls are exempt; login and register refuse a browser that
says it is elsewhere (login CSRF). The WebSocket handshake uses the same rule,
scheme included."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate

_mobiles = itertools.count(13700000000)
ALLOWED = "https://app.example.org"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", allowed_origins=[ALLOWED])
    await migrate(settings.effective_database_url)
    async with TestClient(TestServer(build_app(settings))) as c:
        yield c


def own(client: TestClient) -> str:
    return f"http://127.0.0.1:{client.port}"


def elsewhere(client: TestClient) -> str:
    # Another port of the same host: same-site for the browser, so the Lax cookie goes along.
    return f"http://127.0.0.1:{client.port + 1}"


async def login_with_cookie(client: TestClient, nickname: str = "victim") -> dict[str, Any]:
    """Register and log in as a same-origin browser would: the cookie is in the jar."""
    mobile = str(next(_mobiles))
    headers = {"Origin": own(client)}
    body = await (await client.post("/user/register", data={"mobile": mobile, "passwd": "secret12",
                                                            "nickname": nickname}, headers=headers)).json()
    assert body["code"] == 0, body
    r = await client.post("/user/login", data={"mobile": mobile, "passwd": "secret12"}, headers=headers)
    body = await r.json()
    assert body["code"] == 0 and "imhub_token" in r.cookies, body
    user: dict[str, Any] = body["data"]
    return user


async def nickname(client: TestClient, user: dict[str, Any]) -> str:
    r = await client.post("/user/me", headers={"Authorization": f"Bearer {user['token']}"})
    return str((await r.json())["data"]["nickname"])


async def update(client: TestClient, headers: dict[str, str]) -> aiohttp.ClientResponse:
    return await client.post("/user/update", data={"nickname": "pwned"}, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "ELSEWHERE"}, id="origin-other-port"),
        pytest.param({"Origin": "null"}, id="origin-null"),
        pytest.param({"Origin": "https://127.0.0.1:PORT"}, id="origin-other-scheme"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="fetch-site-same-site"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="fetch-site-cross-site"),
        pytest.param({"Referer": "ELSEWHERE/attack.html"}, id="referer-other-port"),
        pytest.param({}, id="no-browser-headers"),
    ],
)
async def test_cookie_write_from_elsewhere_is_refused(site: TestClient, headers: dict[str, str]) -> None:
    user = await login_with_cookie(site)
    headers = {k: v.replace("ELSEWHERE", elsewhere(site)).replace("PORT", str(site.port)) for k, v in headers.items()}
    r = await update(site, headers)
    body = await r.json()
    assert r.status == 403 and body["code"] == -1 and "cross-origin" in body["msg"], body
    assert await nickname(site, user) == "victim"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "OWN"}, id="origin-own"),
        pytest.param({"Origin": ALLOWED}, id="origin-allow-listed"),
        pytest.param({"Sec-Fetch-Site": "same-origin"}, id="fetch-site-same-origin"),
        pytest.param({"Referer": "OWN/chat/index.shtml"}, id="referer-own"),
    ],
)
async def test_cookie_write_from_this_origin_passes(site: TestClient, headers: dict[str, str]) -> None:
    user = await login_with_cookie(site)
    r = await update(site, {k: v.replace("OWN", own(site)) for k, v in headers.items()})
    assert (await r.json())["code"] == 0
    assert await nickname(site, user) == "pwned"


async def test_bearer_writes_are_exempt(site: TestClient) -> None:
    user = await login_with_cookie(site)
    site.session.cookie_jar.clear()
    r = await update(site, {"Authorization": f"Bearer {user['token']}", "Origin": elsewhere(site)})
    assert (await r.json())["code"] == 0


async def test_logout_from_elsewhere_is_refused(site: TestClient) -> None:
    user = await login_with_cookie(site)
    r = await site.post("/user/logout", headers={"Origin": elsewhere(site)})
    assert r.status == 403
    assert (await site.post("/user/me", headers={"Authorization": f"Bearer {user['token']}"})).status == 200


async def test_login_csrf_is_refused(site: TestClient) -> None:
    """A cross-site form logging the victim into the attacker's account."""
    attacker = await login_with_cookie(site, "attacker")
    site.session.cookie_jar.clear()
    for headers in ({"Origin": elsewhere(site)}, {"Sec-Fetch-Site": "cross-site"}):
        r = await site.post("/user/login", data={"mobile": attacker["mobile"], "passwd": "secret12"}, headers=headers)
        assert r.status == 403 and "imhub_token" not in r.cookies
        r = await site.post("/user/register", data={"mobile": "13799999999", "passwd": "secret12"}, headers=headers)
        assert r.status == 403
    # API clients send no browser headers and keep working.
    r = await site.post("/user/login", data={"mobile": attacker["mobile"], "passwd": "secret12"})
    assert (await r.json())["code"] == 0


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("OWN", True),
        (ALLOWED, True),
        ("https://127.0.0.1:PORT", False),  # same host and port, other scheme
        ("ELSEWHERE", False),
        ("null", False),
    ],
)
async def test_websocket_uses_the_same_rule(site: TestClient, origin: str, allowed: bool) -> None:
    user = await login_with_cookie(site)
    origin = origin.replace("OWN", own(site)).replace("ELSEWHERE", elsewhere(site)).replace("PORT", str(site.port))
    if allowed:
        ws = await site.ws_connect(f"/chat?id={user['id']}&token={user['token']}", headers={"Origin": origin})
        await ws.close()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await site.ws_connect(f"/chat?id={user['id']}&token={user['token']}", headers={"Origin": origin})
        assert err.value.status == 403
