"""Issue #15 item 3: the seed's register page uploads the avatar before the account
exists (no cookie, no token). One small image is accepted without a session, rate-limited
per address, and swept after a day unless a registration uses it; everything else still
needs a session."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from media_helpers import stored_files, upload
from media_samples import MP3_ID3, image_bytes, photo_jpeg

from imhub.app import SERVICES, build_app
from imhub.config import Settings
from imhub.media import service as media_service
from imhub.store.migrate import migrate


async def anonymous_client(settings: Settings) -> TestClient:
    await migrate(settings.effective_database_url)
    return TestClient(TestServer(build_app(settings)))


async def test_register_page_avatar_upload(client: TestClient, settings: Settings) -> None:
    """As CLIENT.md describes: upload with no cookie, put ``data`` into ``avatar``."""
    status, body = await upload(client, image_bytes("PNG", (200, 200)), "me.png", content_type="image/png")
    assert status == 200 and body["code"] == 0, body
    avatar = body["data"]
    assert (await client.get(avatar)).status == 200
    r = await client.post(
        "/user/register", data={"mobile": "13800000077", "passwd": "secret1", "passwdr": "secret1", "avatar": avatar}
    )
    reg = await r.json()
    assert reg["code"] == 0 and reg["data"]["avatar"] == avatar, reg


async def test_only_images_without_a_session(client: TestClient, settings: Settings) -> None:
    status, body = await upload(client, MP3_ID3, "v.mp3", filetype=".mp3")
    assert status == 401 and body["code"] == -1 and "session" in body["msg"]
    assert stored_files(settings) == []


async def test_anonymous_size_cap(settings: Settings) -> None:
    small = settings.model_copy(update={"media_anonymous_max_bytes": 64 * 1024})
    async with await anonymous_client(small) as c:
        status, body = await upload(c, photo_jpeg(200 * 1024, (900, 700)), "big.jpg")
        assert status == 413 and body["code"] == -1 and "without a session" in body["msg"], body
        assert stored_files(small) == []


async def test_anonymous_rate_per_address(settings: Settings) -> None:
    few = settings.model_copy(update={"media_anonymous_uploads_per_hour": 2})
    async with await anonymous_client(few) as c:
        for _ in range(2):
            assert (await upload(c, image_bytes("PNG"), "a.png"))[1]["code"] == 0
        status, body = await upload(c, image_bytes("PNG"), "a.png")
        assert status == 429 and body["retry_after"] >= 1
        assert len(stored_files(few)) == 4


async def test_unclaimed_uploads_swept_after_the_ttl(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _s, used = await upload(client, image_bytes("PNG", (50, 50)), "used.png")
    _s, thumb_used = await upload(client, image_bytes("PNG", (40, 40)), "thumb-used.png")
    _s, unused = await upload(client, image_bytes("PNG", (60, 60)), "unused.png")
    r = await client.post("/user/register", data={"mobile": "13800000078", "passwd": "secret1", "avatar": used["data"]})
    assert (await r.json())["code"] == 0
    # the web client uses an upload's thumbnail as avatar: that claims the upload too
    avatar = thumb_used["file"]["thumb"]
    r = await client.post("/user/register", data={"mobile": "13800000079", "passwd": "secret1", "avatar": avatar})
    assert (await r.json())["code"] == 0
    media = client.server.app[SERVICES].media
    assert await media.sweep_unclaimed() == 0  # all younger than a day
    assert len(stored_files(settings)) == 6

    day_later = int(time.time() * 1000) + settings.media_pending_ttl_seconds * 1000 + 1000
    monkeypatch.setattr(media_service, "now_ms", lambda: day_later)
    assert await media.sweep_unclaimed() == 1
    assert (await client.get(unused["data"])).status == 404
    assert (await client.get(unused["file"]["thumb"])).status == 404
    assert (await client.get(used["data"])).status == 200
    assert (await client.get(thumb_used["file"]["thumb"])).status == 200
    assert len(stored_files(settings)) == 4
