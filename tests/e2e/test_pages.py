"""imhub/web/pages.py: the web client's pages, assets and the not-built answer (no browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.store.migrate import migrate
from imhub.web import pages


async def _client(settings: Settings, static_dir: Path) -> AsyncIterator[TestClient]:
    await migrate(settings.effective_database_url)
    app = build_app(settings)
    app[pages.STATIC_DIR_KEY] = static_dir
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(
        '<!doctype html><script type="module" src="/asset/assets/index-AbCd1234.js"></script>'
    )
    (root / "assets" / "index-AbCd1234.js").write_text("console.log(1)")
    (root / "robots.txt").write_text("x")
    return root


@pytest.fixture
async def web(settings: Settings, built: Path) -> AsyncIterator[TestClient]:
    async for c in _client(settings, built):
        yield c


@pytest.fixture
async def unbuilt(settings: Settings, tmp_path: Path) -> AsyncIterator[TestClient]:
    async for c in _client(settings, tmp_path / "missing"):
        yield c


async def test_root_redirects_to_login(web: TestClient) -> None:
    resp = await web.get("/", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/user/login.shtml"


async def test_favicon_is_served_even_without_a_build(unbuilt: TestClient) -> None:
    resp = await unbuilt.get("/favicon.ico")
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/x-icon"
    assert (await resp.read())[:4] == b"\x00\x00\x01\x00"  # an ICO header


@pytest.mark.parametrize(
    "path",
    ["/user/login.shtml", "/user/register.shtml", "/chat/index.shtml", "/login", "/chats", "/chat/p1_2", "/me",
     "/contacts", "/groups", "/groups/3", "/groups/3/settings", "/register", "/join/Ab-c_12"],
)
async def test_pages_serve_the_app(web: TestClient, path: str) -> None:
    resp = await web.get(path)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "/asset/assets/index-AbCd1234.js" in await resp.text()


async def test_hashed_assets_cache_forever(web: TestClient) -> None:
    resp = await web.get("/asset/assets/index-AbCd1234.js")
    assert resp.status == 200
    assert "immutable" in resp.headers["Cache-Control"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    plain = await web.get("/asset/robots.txt")
    assert plain.status == 200
    assert plain.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    ["/asset/../pages.py", "/asset/assets/../../x", "/asset/nope.js", "/asset/index.html", "/asset/%2e%2e/x",
     "/asset/assets//index-AbCd1234.js"],
)
async def test_assets_stay_inside_the_build(web: TestClient, path: str) -> None:
    resp = await web.get(path)
    assert resp.status == 404


async def test_websocket_path_is_not_a_page(web: TestClient) -> None:
    resp = await web.get("/chat")  # the WebSocket endpoint, not index.html
    assert resp.status != 200 or "text/html" not in resp.headers.get("Content-Type", "")


async def test_missing_build_answers_503_with_instructions(unbuilt: TestClient) -> None:
    resp = await unbuilt.get("/user/login.shtml")
    assert resp.status == 503
    assert "make run" in await resp.text()
