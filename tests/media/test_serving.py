"""GET /mnt/{name}: our own Content-Type, nosniff, inline media, ranges, long caching,
strict names; the S3 backend end to end; a CDN base URL."""

from __future__ import annotations

import boto3
import pytest
from aiohttp.test_utils import TestClient
from media_helpers import app_client, stored_files, upload
from media_samples import MP3_ID3, PDF, image_bytes, wav_bytes

from imhub.config import Settings
from imhub.media.names import CACHE_CONTROL


async def test_image_headers(authed: TestClient) -> None:
    _, body = await upload(authed, image_bytes("PNG"), "a.html", content_type="text/html")
    r = await authed.get(body["data"])
    assert r.status == 200
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == CACHE_CONTROL
    assert "Content-Disposition" not in r.headers
    assert "sandbox" in r.headers["Content-Security-Policy"]


async def test_voice_is_inline_with_ranges(authed: TestClient) -> None:
    wav = wav_bytes(seconds=1.0)
    _, body = await upload(authed, wav, "v.wav")
    r = await authed.get(body["data"])
    assert r.headers["Content-Type"] == "audio/wav"
    assert "Content-Disposition" not in r.headers  # plays in a tab too; it cannot run script
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    stored = await r.read()  # remuxed (metadata dropped): a fresh WAV of the same samples
    assert stored[:4] == b"RIFF" and len(stored) == body["file"]["size"]
    r = await authed.get(body["data"], headers={"Range": "bytes=100-199"})
    assert r.status == 206 and await r.read() == stored[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(stored)}"


async def test_head_request(authed: TestClient) -> None:
    _, body = await upload(authed, MP3_ID3, "a.mp3")
    r = await authed.head(body["data"])
    assert r.status == 200 and r.headers["Content-Type"] == "audio/mpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/mnt/..%2Fimhub.db",
        "/mnt/%2e%2e%2fimhub.db",
        "/mnt/../imhub.db",
        "/mnt/imhub.db",
        "/mnt/0123456789abcdef0123456789abcdef.html",
        "/mnt/0123456789abcdef0123456789abcdef.png",  # well-formed, not there
        "/mnt/0123456789ABCDEF0123456789ABCDEF.png",
        "/mnt/01/0123456789abcdef0123456789abcdef.png",
    ],
)
async def test_bad_or_missing_names_are_404(authed: TestClient, settings: Settings, path: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    r = await authed.get(path)
    assert r.status == 404
    body = await r.json()
    assert body["code"] == -1


async def test_public_unguessable_names(client: TestClient, authed: TestClient) -> None:
    """Media is fetched without a session (img tags, CDNs): the name is the capability."""
    _, body = await upload(authed, image_bytes("JPEG"), "a.jpg")
    authed.session.cookie_jar.clear()
    r = await client.get(body["data"])
    assert r.status == 200


async def test_cdn_base_url(settings: Settings) -> None:
    cdn = settings.model_copy(update={"media_base_url": "https://cdn.example.com/im/"})
    async with app_client(cdn) as c:
        _, body = await upload(c, image_bytes("JPEG"), "a.jpg")
        assert body["data"].startswith("https://cdn.example.com/im/") and body["data"].endswith(".jpg")
        assert body["file"]["thumb"].startswith("https://cdn.example.com/im/")
        name = body["data"].rsplit("/", 1)[1]
        assert (await c.get(f"/mnt/{name}")).status == 200  # the app can still serve it
    assert len(stored_files(cdn)) == 2


async def test_s3_backend_end_to_end(s3_settings: Settings) -> None:
    async with app_client(s3_settings.model_copy(update={"media_file_kinds": ["pdf"]})) as c:
        png = image_bytes("PNG", (400, 300))
        _, body = await upload(c, png, "a.png")
        assert body["code"] == 0, body
        r = await c.get(body["data"])  # default base URL: the app proxies the bucket
        assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        _, voice = await upload(c, MP3_ID3, "a.mp3")
        r = await c.get(voice["data"])
        assert "Content-Disposition" not in r.headers
        assert len(await r.read()) == voice["file"]["size"]
        _, doc = await upload(c, PDF, "a.pdf")
        r = await c.get(doc["data"], params={"name": "q3.pdf"})
        assert r.headers["Content-Disposition"] == 'attachment; filename="q3.pdf"' and await r.read() == PDF
        assert (await c.get("/mnt/0123456789abcdef0123456789abcdef.png")).status == 404

    # The objects carry the serving headers themselves, for a bucket/CDN serving them.
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_settings.media_s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_settings.media_s3_bucket)["Contents"])
    assert len(keys) == 4 and all(k.startswith("media/") for k in keys)
    mp3 = next(k for k in keys if k.endswith(".mp3"))
    head = s3.head_object(Bucket=s3_settings.media_s3_bucket, Key=mp3)
    assert head["ContentType"] == "audio/mpeg" and head["CacheControl"] == CACHE_CONTROL
    assert "ContentDisposition" not in head
    pdf = next(k for k in keys if k.endswith(".pdf"))
    head = s3.head_object(Bucket=s3_settings.media_s3_bucket, Key=pdf)
    assert head["ContentDisposition"] == f'attachment; filename="{pdf.rsplit("/", 1)[1]}"'
    assert stored_files(s3_settings) == []  # nothing on local disk


async def test_s3_bad_input_stores_nothing(s3_settings: Settings) -> None:
    async with app_client(s3_settings) as c:
        _, body = await upload(c, b"<html></html>", "a.png")
        assert body["code"] == -1
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_settings.media_s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    assert s3.list_objects_v2(Bucket=s3_settings.media_s3_bucket).get("KeyCount", 0) == 0
