"""Issue #16 item 11: content may not make viewers' browsers fetch third-party URLs.

Avatars, group icons and the pictures/sounds of messages that clients load by
themselves must be this server's media (or the configured media base); http(s) links
stay allowed only where a user clicks them (link, news, red-packet cards);
``javascript:`` and other schemes are refused with a message naming the scheme. The
pages' CSP no longer lets images or sounds come from anywhere."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from imhub.app import build_app
from imhub.config import Settings
from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import SendMessage, decode
from imhub.store.migrate import migrate
from tests.integration.chatkit import api, befriend, connect, make_user

MEDIA = "/mnt/0123456789abcdef0123456789abcdef.jpg"
TRACKER = "https://tracker.example/pixel.gif?u=42"


def frame(media: int, **fields: str) -> str:
    return orjson.dumps({"cmd": 10, "dstid": 2, "media": media, "content": "x", **fields}).decode()


# --- message bodies (pure) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("media", "fields"),
    [
        (4, {"url": MEDIA, "pic": MEDIA.replace(".jpg", "_t.jpg")}),  # image
        (3, {"url": "/mnt/0123456789abcdef0123456789abcdef.webm"}),  # voice
        (6, {"url": "/asset/plugins/doutu/1.gif"}),  # the seed's stickers: our static files
        (7, {"url": "https://example.com/article?id=1"}),  # a link card: clicked, not loaded
        (2, {"url": "http://example.com/news", "pic": MEDIA}),
        (1, {}),
    ],
)
def test_accepted_urls(media: int, fields: dict[str, str]) -> None:
    request = decode(frame(media, **fields), 1, max_page=50)
    assert isinstance(request, SendMessage)


@pytest.mark.parametrize(
    ("media", "fields", "msg"),
    [
        (4, {"url": TRACKER}, "url: only this server's media"),
        (4, {"url": MEDIA, "pic": TRACKER}, "pic: only this server's media"),
        (3, {"url": "https://evil.example/a.mp3"}, "url: only this server's media"),
        (6, {"url": "//evil.example/s.gif"}, "url: only this server's media"),
        (8, {"url": MEDIA, "pic": "http://evil.example/poster.jpg"}, "pic: only"),
        (9, {"pic": TRACKER}, "pic: only"),
        (4, {"url": "/mnt/../user/logout"}, "url: only"),
        (4, {"url": "/user/logout"}, "url: only"),
        (7, {"url": "javascript:alert(document.cookie)"}, "url: javascript: URLs are not allowed"),
        (7, {"url": "JavaScript:alert(1)"}, "url: javascript: URLs are not allowed"),
        (4, {"url": "data:image/svg+xml,<svg onload=alert(1)>"}, "url: data: URLs are not allowed"),
        (7, {"url": "ftp://example.com/x"}, "url: ftp: URLs are not allowed"),
        (7, {"url": "example.com"}, "url: a link must be an http(s) URL"),
    ],
)
def test_refused_urls(media: int, fields: dict[str, str], msg: str) -> None:
    with pytest.raises(Refused) as err:
        decode(frame(media, **fields), 1, max_page=50)
    assert err.value.code is ErrorCode.BAD_URL and str(err.value.msg).startswith(msg), err.value.msg


def test_configured_media_base_is_accepted() -> None:
    cdn = "https://cdn.example.com/media/"
    ok = decode(frame(4, url=cdn + "0123456789abcdef0123456789abcdef.jpg"), 1, max_page=50, media_base=cdn)
    assert isinstance(ok, SendMessage)
    with pytest.raises(Refused):
        decode(frame(4, url="https://cdn.example.com/other/x.jpg"), 1, max_page=50, media_base=cdn)


# --- over the wire --------------------------------------------------------------------
async def test_socket_refuses_external_image(client: TestClient) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    await sa.send(cmd=10, dstid=b.id, media=4, url=TRACKER, cid="i1")
    err = await sa.recv()
    assert err["cmd"] == 2 and err["error"] == "bad_url" and err["code"] == 4007 and err["cid"] == "i1"


@pytest.mark.parametrize(
    ("avatar", "msg"),
    [
        (TRACKER, "avatar: only this server's media URLs are accepted (upload the file first)"),
        ("javascript:alert(1)", "avatar: javascript: URLs are not allowed"),
        ("//tracker.example/a.png", "avatar: only this server's media URLs are accepted (upload the file first)"),
    ],
)
async def test_avatar_must_be_our_media(client: TestClient, avatar: str, msg: str) -> None:
    body = await api(client, "/user/register", mobile="13800000501", passwd="secret12", avatar=avatar)
    assert body == {"code": -1, "msg": msg}
    me = await make_user(client)
    body = await api(client, "/user/update", me, avatar=avatar)
    assert body["code"] == -1 and body["msg"] == msg
    body = await api(client, "/user/update", me, avatar=MEDIA)
    assert body["code"] == 0 and body["data"]["avatar"] == MEDIA


@pytest.mark.parametrize(
    ("icon", "msg"),
    [
        ("javascript:alert(1)", "icon: javascript: URLs are not allowed"),
        (TRACKER, "icon: only this server's media URLs are accepted (upload the file first)"),
    ],
)
async def test_group_icon_must_be_our_media(client: TestClient, icon: str, msg: str) -> None:
    owner = await make_user(client)
    body = await api(client, "/contact/createcommunity", owner, ownerid=owner.id, name="team", icon=icon)
    assert body == {"code": -1, "msg": msg}
    body = await api(client, "/contact/createcommunity", owner, ownerid=owner.id, name="team", icon=MEDIA)
    assert body["code"] == 0 and body["data"]["icon"] == MEDIA


async def test_page_csp_allows_images_only_from_here(client: TestClient, settings: Settings) -> None:
    csp = (await client.get("/user/login.shtml")).headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert directives["media-src"] == ["'self'", "blob:"]

    cdn = settings.model_copy(update={"media_base_url": "https://cdn.example.com/media/"})
    await migrate(cdn.effective_database_url)
    async with TestClient(TestServer(build_app(cdn))) as c:
        csp = (await c.get("/user/login.shtml")).headers["Content-Security-Policy"]
        assert "img-src 'self' data: blob: https://cdn.example.com;" in csp
        assert "media-src 'self' blob: https://cdn.example.com;" in csp
