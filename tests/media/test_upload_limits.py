"""Resource bounds of uploads (issue #16 items 4 and 8): image bombs within the caps,
decode concurrency per process and per user, memory given back after a burst,
per-user upload rate and storage quota, and voice/video metadata removed by remuxing."""

from __future__ import annotations

import asyncio
import io

import av
import pytest
from aiohttp.test_utils import TestClient
from media_helpers import app_client, stored_files, upload
from media_samples import (
    GPS,
    MP3_ID3,
    MP4_VIDEO,
    OGG_OPUS,
    WEBM,
    animated_gif,
    image_bytes,
    photo_jpeg,
    png_blank,
    rss_mb,
    wav_bytes,
    with_gps_atom,
)

from imhub.config import Settings


# --- image bombs ------------------------------------------------------------------------
async def test_default_pixel_cap_refuses_the_review_bomb(authed: TestClient, settings: Settings) -> None:
    """6320x6320 (39.9 Mpx, 5 KB) was under the old 40 Mpx cap: 1.2 s CPU, +500 MB."""
    bomb = png_blank(6320, 6320)
    assert len(bomb) < 10_000
    _status, body = await upload(authed, bomb, "b.png")
    assert body["code"] == -1 and body["msg"].startswith("image dimensions too large"), body
    assert stored_files(settings) == []


async def test_long_animation_refused(authed: TestClient, settings: Settings) -> None:
    """Frames are all held while re-encoding: 600 small frames are refused by count."""
    _status, body = await upload(authed, animated_gif(frames=600, size=(16, 16)), "a.gif")
    assert body["code"] == -1 and body["msg"].startswith("animation too large"), body
    _status, body = await upload(authed, animated_gif(frames=40, size=(16, 16)), "a.gif")
    assert body["code"] == 0, body


async def test_decodes_per_user_are_bounded(settings: Settings) -> None:
    """One account cannot hold every decode worker: beyond its share it gets 429 at once."""
    one = settings.model_copy(update={"media_decode_per_user": 1})
    async with app_client(one) as c:
        photo = photo_jpeg(400 * 1024, (2000, 1500))
        results = await asyncio.gather(*[upload(c, photo, f"p{i}.jpg") for i in range(4)])
        statuses = sorted(status for status, _ in results)
        assert statuses[0] == 200 and 429 in statuses, results
        refused = next(body for status, body in results if status == 429)
        assert refused["code"] == -1 and refused["retry_after"] >= 1
        # nothing is left counted once they are done: the next upload goes through
        assert (await upload(c, image_bytes("PNG"), "x.png"))[1]["code"] == 0


@pytest.mark.slow  # ~15 s of decoding on 2 cores
async def test_burst_of_bombs_leaves_the_server_small_and_responsive(settings: Settings) -> None:
    """Six near-cap images (4800x4800 = 23 Mpx, 3 KB each) at once: decoded in worker
    processes that exit, so the server's own memory does not grow by the ~70 MB of RGB
    each one needs (in-process decoding took it from 101 to 1,115 MB, and it stayed);
    and the event loop keeps answering while they run."""
    many = settings.model_copy(update={"media_decode_per_user": 6})
    async with app_client(many) as c:
        bomb = png_blank(4800, 4800)
        await upload(c, image_bytes("PNG"), "warm.png")  # start the pool outside the measure
        before = rss_mb()
        burst = asyncio.gather(*[upload(c, bomb, f"b{i}.png") for i in range(6)])
        health = []
        while not burst.done():
            health.append((await c.get("/healthz")).status)
            await asyncio.sleep(0.05)
        results = await burst
        assert all(body["code"] == 0 for _status, body in results), results
        assert health and set(health) == {200}
        grown = rss_mb() - before
        assert grown < 60, f"server RSS grew by {grown:.0f} MB"


# --- upload rate and storage quota ------------------------------------------------------
async def test_upload_rate_per_user(settings: Settings) -> None:
    slow = settings.model_copy(update={"media_uploads_per_minute": 2})
    async with app_client(slow) as c:
        for _ in range(2):
            assert (await upload(c, image_bytes("PNG"), "x.png"))[1]["code"] == 0
        status, body = await upload(c, image_bytes("PNG"), "x.png")
        assert status == 429 and body["msg"].startswith("too many uploads") and body["retry_after"] >= 1
        assert len(stored_files(slow)) == 4  # two images, two thumbnails


async def test_storage_quota_per_user(settings: Settings) -> None:
    small = settings.model_copy(update={"media_user_quota_bytes": 40_000})
    async with app_client(small) as c:
        voice = wav_bytes(seconds=1.5)  # 24 KB
        assert (await upload(c, voice, "a.wav"))[1]["code"] == 0
        _status, body = await upload(c, voice, "b.wav")
        assert body["code"] == -1 and body["msg"].startswith("storage quota exceeded"), body
        assert len(stored_files(small)) == 1


# --- voice and video: remuxed without metadata -----------------------------------------
def tags_of(data: bytes) -> str:
    with av.open(io.BytesIO(data)) as c:
        return repr(dict(c.metadata)) + "".join(repr(dict(s.metadata)) for s in c.streams)


@pytest.mark.parametrize(
    ("data", "filename", "filetype"),
    [(MP3_ID3, "v.mp3", ".mp3"), (OGG_OPUS, "v.ogg", None), (WEBM, "v.webm", ".webm")],
    ids=["mp3", "ogg", "webm"],
)
async def test_voice_tags_removed(authed: TestClient, data: bytes, filename: str, filetype: str | None) -> None:
    assert b"SECRET-" in data or "SECRET-" in tags_of(data)
    _status, body = await upload(authed, data, filename, filetype=filetype)
    assert body["code"] == 0 and body["file"]["kind"] == "voice", body
    stored = await (await authed.get(body["data"])).read()
    assert b"SECRET-" not in stored and "SECRET-" not in tags_of(stored)
    assert body["file"]["duration"] == pytest.approx(1.0, abs=0.1)


async def test_video_gps_atom_removed(authed: TestClient) -> None:
    video = with_gps_atom(MP4_VIDEO)
    assert GPS in video and "48.8584" in tags_of(video)
    _status, body = await upload(authed, video, "v.mp4", content_type="video/mp4")
    assert body["code"] == 0 and body["file"]["kind"] == "video", body
    stored = await (await authed.get(body["data"])).read()
    assert GPS not in stored and b"SECRET-" not in stored and b"\xa9xyz" not in stored
    with av.open(io.BytesIO(stored)) as c:
        assert [s.type for s in c.streams] == ["video"] and c.streams.video[0].frames == 10


@pytest.mark.parametrize(
    "junk",
    [
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x5a" * 19_000,
        b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64,
        MP4_VIDEO[: len(MP4_VIDEO) // 2],
    ],
    ids=["ftyp-then-junk", "ftyp-then-bytes", "truncated"],
)
async def test_junk_labelled_video_is_refused(authed: TestClient, settings: Settings, junk: bytes) -> None:
    status, body = await upload(authed, junk, "clip.mp4", content_type="video/mp4")
    assert status == 200 and body["code"] == -1, body
    assert body["msg"].startswith(("the file is damaged", "the file has no audio or video"))
    assert stored_files(settings) == []
