"""POST /attach/upload as the seed client calls it, and every kind of bad input:
each gets its own {code:-1,msg}, nothing is stored, the server stays up."""

from __future__ import annotations

import io

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from media_helpers import app_client, login, stored_files, upload
from media_samples import (
    HTML,
    M4A,
    MP3_ID3,
    MP4_ISOM,
    OGG_OPUS,
    PDF,
    WEBM,
    animated_gif,
    image_bytes,
    jpeg_with_exif,
    photo_jpeg,
    png_bomb,
    wav_bytes,
)
from PIL import Image

from imhub.config import Settings
from imhub.media.names import NAME_RE


# --- success ----------------------------------------------------------------------------
async def test_photo_upload_reply_and_thumbnail(authed: TestClient, settings: Settings) -> None:
    photo = photo_jpeg()
    status, body = await upload(authed, photo, "holiday.png", content_type="image/png")  # name/type ignored
    assert status == 200 and body["code"] == 0, body
    f = body["file"]
    assert body["data"] == f["url"] and isinstance(body["data"], str)
    assert f["url"].startswith("/mnt/") and NAME_RE.match(f["url"].removeprefix("/mnt/"))
    assert f["url"].endswith(".jpg") and f["kind"] == "image" and f["mime"] == "image/jpeg"
    assert (f["width"], f["height"]) == (1600, 1200)
    assert f["thumb"].startswith("/mnt/") and f["thumb"].endswith("_t.jpg")

    r = await authed.get(f["thumb"])
    thumb = await r.read()
    assert r.status == 200 and len(thumb) <= 60 * 1024 and len(thumb) <= len(photo) / 8
    assert max(Image.open(io.BytesIO(thumb)).size) <= 320
    r = await authed.get(f["url"])
    original = await r.read()
    assert r.status == 200 and len(original) == f["size"]
    assert len(stored_files(settings)) == 2


async def test_exif_stripped_in_stored_file(authed: TestClient) -> None:
    _status, body = await upload(authed, jpeg_with_exif(), "me.jpg")
    assert body["code"] == 0
    data = await (await authed.get(body["data"])).read()
    assert b"SERIAL-12345" not in data and not Image.open(io.BytesIO(data)).getexif()
    assert (body["file"]["width"], body["file"]["height"]) == (40, 80)


async def test_animated_gif_and_bearer_auth(client: TestClient) -> None:
    token = await login(client)
    client.session.cookie_jar.clear()
    _status, body = await upload(client, animated_gif(), "x.gif", headers={"Authorization": f"Bearer {token}"})
    assert body["code"] == 0 and body["file"]["mime"] == "image/gif"
    data = await (await client.get(body["data"])).read()
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 4


@pytest.mark.parametrize(
    ("data", "filetype", "ext", "kind"),
    [
        (MP3_ID3, ".mp3", "mp3", "voice"),
        (OGG_OPUS, None, "ogg", "voice"),
        (WEBM, ".webm", "webm", "voice"),
        (M4A, None, "m4a", "voice"),
        (MP4_ISOM, ".m4a", "m4a", "voice"),  # MediaRecorder mp4 audio: the hint decides
        (MP4_ISOM, ".mp4", "mp4", "video"),
    ],
)
async def test_voice_and_video(authed: TestClient, data: bytes, filetype: str | None, ext: str, kind: str) -> None:
    _status, body = await upload(authed, data, "rec.bin", filetype=filetype)
    assert body["code"] == 0, body
    assert body["data"].endswith("." + ext) and body["file"]["kind"] == kind
    assert "thumb" not in body["file"] and "width" not in body["file"]


async def test_wav_duration(authed: TestClient) -> None:
    _status, body = await upload(authed, wav_bytes(seconds=1.5), "v.wav", filetype=".wav")
    assert body["code"] == 0 and body["file"]["duration"] == 1.5 and body["file"]["mime"] == "audio/wav"


async def test_other_files_only_when_configured(authed: TestClient, settings: Settings) -> None:
    status, body = await upload(authed, PDF, "doc.pdf")
    assert status == 200 and body == {
        "code": -1, "msg": "file type pdf is not accepted here", "error": "unsupported_media", "errcode": 4150
    }
    assert stored_files(settings) == []
    async with app_client(settings.model_copy(update={"media_file_kinds": ["pdf"]})) as c:
        status, body = await upload(c, PDF, "doc.pdf")
        assert body["code"] == 0 and body["file"]["kind"] == "file" and body["data"].endswith(".pdf")
        r = await c.get(body["data"])
        assert r.headers["Content-Disposition"].startswith("attachment")


# --- bad input --------------------------------------------------------------------------
BAD = [
    ("empty", b"", "a.png", "the file is empty", 200),
    ("html behind .png", HTML, "a.png", "unsupported file type", 200),
    ("svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "a.svg", "unsupported file type", 200),
    ("png bomb", png_bomb(), "bomb.png", "image dimensions too large", 200),
    ("truncated jpeg", photo_jpeg(40 * 1024, (300, 200))[:9000], "cut.jpg", "image is damaged or truncated", 200),
    ("jpeg magic, garbage after", b"\xff\xd8\xff\xe0" + b"\0" * 500, "x.jpg", "image is damaged or truncated", 200),
    ("path traversal name", image_bytes("PNG"), "../../etc/passwd.png", "invalid file name", 200),
    ("windows path name", image_bytes("PNG"), "..\\..\\boot.ini", "invalid file name", 200),
]


@pytest.mark.parametrize(("data", "filename", "msg", "status"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_bad_input(
    authed: TestClient, settings: Settings, data: bytes, filename: str, msg: str, status: int
) -> None:
    got_status, body = await upload(authed, data, filename, content_type="image/png")
    assert got_status == status and body["code"] == -1 and body["msg"].startswith(msg), body
    assert stored_files(settings) == []
    await assert_still_up(authed)


async def test_missing_file_field(authed: TestClient, settings: Settings) -> None:
    status, body = await upload(authed, image_bytes("PNG"), "a.png", field="upload")
    assert status == 200 and body == {"code": -1, "msg": "missing file field"}
    form = aiohttp.FormData({"filetype": ".png"})
    form.add_field("note", "x", filename=None)
    r = await authed.post("/attach/upload", data=form)
    assert (await r.json())["msg"] in ("missing file field", "expected multipart/form-data with a file field")
    assert stored_files(settings) == []


async def test_not_multipart(authed: TestClient, settings: Settings) -> None:
    r = await authed.post("/attach/upload", data={"file": "hello"})
    assert await r.json() == {"code": -1, "msg": "expected multipart/form-data with a file field"}
    assert stored_files(settings) == []


async def test_bad_filetype_hint(authed: TestClient, settings: Settings) -> None:
    _status, body = await upload(authed, MP3_ID3, "a.mp3", filetype="../../x")
    assert body == {"code": -1, "msg": "invalid filetype"}
    assert stored_files(settings) == []


async def test_bad_credentials_are_401(client: TestClient, settings: Settings) -> None:
    await login(client)
    status, body = await upload(client, image_bytes("PNG"), "a.png", headers={"Authorization": "Bearer nope"})
    assert status == 401 and body["code"] == -1 and body["msg"]
    assert stored_files(settings) == []


async def test_over_the_cap_is_413_while_streaming(settings: Settings) -> None:
    small = settings.model_copy(update={"media_image_max_bytes": 100 * 1024})
    async with app_client(small) as c:
        big = photo_jpeg(300 * 1024, (1000, 800))
        status, body = await upload(c, big, "big.jpg")
        assert status == 413 and body == {
            "code": -1, "msg": f"image too large (at most {100 * 1024} bytes)",
            "error": "media_too_large", "errcode": 4130,
        }
        assert stored_files(small) == []
        # chunked (no Content-Length): the cap is still enforced while reading
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(big), filename="big.jpg")
        r = await c.post("/attach/upload", data=form, chunked=True)
        assert r.status == 413
        assert stored_files(small) == []
        await assert_still_up(c)
    assert len(stored_files(small)) == 2


async def test_over_the_total_cap_refused_before_reading(settings: Settings) -> None:
    tiny = settings.model_copy(update={"max_upload_bytes": 2048})
    async with app_client(tiny) as c:
        status, body = await upload(c, MP3_ID3 * 200, "long.mp3")
        assert status == 413 and body["code"] == -1 and "too large" in body["msg"]
        assert stored_files(tiny) == []


async def assert_still_up(client: TestClient) -> None:
    status, body = await upload(client, image_bytes("PNG"), "fine.png")
    assert status == 200 and body["code"] == 0
    assert (await client.get(body["data"])).status == 200
