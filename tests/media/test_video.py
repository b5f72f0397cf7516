"""Video uploads: remuxed, with a poster frame (JPEG), width, height and duration in ms
taken by PyAV; files and video served with the right Content-Disposition; refusals with
their own error codes. Every clip is generated here with PyAV."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from media_helpers import app_client, stored_files, upload
from media_samples import HTML, MP4_ISOM, PDF, RED, SECRET_TAGS, colour_video
from PIL import Image

from imhub.config import Settings
from imhub.media import avmedia
from imhub.media.errors import MediaRejected
from imhub.media.names import content_disposition, download_name

BLUE = (20, 20, 220)


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --- avmedia: the worker's part ---------------------------------------------------------
def test_process_video_poster_dimensions_duration() -> None:
    video = avmedia.process_video(colour_video(seconds=1.5, size=(96, 64)), "mp4", 24_000_000)
    assert (video.width, video.height) == (96, 64)
    assert video.duration_ms is not None and 1400 <= video.duration_ms <= 1600
    assert video.poster is not None and video.poster[:3] == b"\xff\xd8\xff"
    poster = Image.open(io.BytesIO(video.poster))
    assert poster.format == "JPEG" and poster.size == (96, 64)
    assert near(poster.getpixel((48, 32)), RED)  # the first frame's own colour
    for tag in SECRET_TAGS.values():
        assert tag.encode() not in video.data


def test_poster_is_scaled_down() -> None:
    video = avmedia.process_video(colour_video(seconds=0.3, size=(1280, 720)), "mp4", 24_000_000)
    assert (video.width, video.height) == (1280, 720)
    assert video.poster is not None
    assert Image.open(io.BytesIO(video.poster)).size == (avmedia.POSTER_MAX_SIDE, 360)


def test_portrait_clip_poster_is_turned_like_players_do() -> None:
    """A phone's portrait clip: stored 96x64 with a -90° display rotation (turn clockwise
    to show). The poster and the size are the upright 64x96, the left side on top."""
    clip = colour_video(seconds=0.5, size=(96, 64), rotation=-90, left=BLUE, codec="libx264")
    video = avmedia.process_video(clip, "mp4", 24_000_000)
    assert (video.width, video.height) == (64, 96)
    assert video.poster is not None
    poster = Image.open(io.BytesIO(video.poster))
    assert poster.size == (64, 96)
    assert near(poster.getpixel((32, 10)), BLUE) and near(poster.getpixel((32, 86)), RED)


def test_video_over_the_pixel_limit_is_refused() -> None:
    with pytest.raises(MediaRejected, match="video dimensions too large: 96x64"):
        avmedia.process_video(colour_video(seconds=0.2), "mp4", 96 * 64 - 1)


def test_audio_only_mp4_has_no_poster() -> None:
    video = avmedia.process_video(MP4_ISOM, "mp4", 24_000_000)
    assert video.poster is None and video.width is None and video.duration_ms


def test_damaged_video_is_refused() -> None:
    clip = colour_video()
    with pytest.raises(MediaRejected, match=r"damaged|no audio or video"):
        avmedia.process_video(clip[: len(clip) // 3], "mp4", 24_000_000)


# --- download names ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wanted", "ext", "saved"),
    [
        ("report.pdf", "pdf", "report.pdf"),
        ("Report.PDF", "pdf", "Report.pdf"),
        ("page.html", "pdf", "page.html.pdf"),  # a polyglot is never saved as .html
        ("notes", "pdf", "notes.pdf"),
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("C:\\Users\\x\\evil.exe", "zip", "evil.exe.zip"),
        ("plan.docx", "zip", "plan.docx"),  # a docx is a zip: keeps its name
        ("\u202egnp.exe", "pdf", "gnp.exe.pdf"),  # right-to-left override removed
        ("a\x00b\nc.pdf", "pdf", "abc.pdf"),
        ("...", "pdf", ""),
        ("  .hidden.pdf", "pdf", "hidden.pdf"),
        ("x" * 400 + ".pdf", "pdf", "x" * 150 + ".pdf"),
    ],
)
def test_download_name(wanted: str, ext: str, saved: str) -> None:
    assert download_name(wanted, ext) == saved


def test_content_disposition_rfc6266() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition('报告 "v2".pdf') == (
        "attachment; filename=\"__ _v2_.pdf\"; filename*=UTF-8''" + quote('报告 "v2".pdf', safe="")
    )


# --- over HTTP --------------------------------------------------------------------------
async def test_video_upload_reply_and_serving(authed: TestClient, settings: Settings) -> None:
    status, body = await upload(authed, colour_video(seconds=1.5, size=(96, 64)), "clip.mp4")
    assert status == 200 and body["code"] == 0, body
    f = body["file"]
    assert f["kind"] == "video" and f["mime"] == "video/mp4" and body["data"].endswith(".mp4")
    assert (f["width"], f["height"]) == (96, 64)
    assert 1400 <= f["duration_ms"] <= 1600
    assert f["thumb"].endswith("_t.jpg") and f["thumb"][:-6] == body["data"][:-4]
    assert len(stored_files(settings)) == 2
    r = await authed.get(f["thumb"])
    assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(await r.read())).size == (96, 64)
    r = await authed.get(body["data"])  # plays inline: no attachment
    assert r.headers["Content-Type"] == "video/mp4" and "Content-Disposition" not in r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in r.headers["Content-Security-Policy"]
    assert len(await r.read()) == f["size"]
    r = await authed.get(body["data"], headers={"Range": "bytes=0-9"})
    assert r.status == 206 and len(await r.read()) == 10


async def test_file_download_headers(settings: Settings) -> None:
    async with app_client(settings.model_copy(update={"media_file_kinds": ["pdf"]})) as c:
        _, body = await upload(c, PDF, "report.pdf")
        assert body["code"] == 0 and body["file"]["kind"] == "file", body
        url = body["data"]
        stored = url.rsplit("/", 1)[1]
        r = await c.get(url)
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["Content-Disposition"] == f'attachment; filename="{stored}"'
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in r.headers["Content-Security-Policy"]
        assert await r.read() == PDF
        r = await c.get(url, params={"name": "季度报告.pdf"})
        assert r.headers["Content-Disposition"] == (
            "attachment; filename=\"____.pdf\"; filename*=UTF-8''" + quote("季度报告.pdf", safe="")
        )
        r = await c.get(url, params={"name": "invoice.html"})
        assert r.headers["Content-Disposition"] == 'attachment; filename="invoice.html.pdf"'
        assert r.headers["Content-Type"] == "application/pdf"


async def test_refusals_have_their_own_codes(authed: TestClient, settings: Settings) -> None:
    status, body = await upload(authed, HTML, "a.pdf")
    assert status == 200 and body["code"] == -1
    assert (body["error"], body["errcode"]) == ("unsupported_media", 4150)
    status, body = await upload(authed, PDF, "doc.pdf")  # pdf not enabled here
    assert (body["error"], body["errcode"]) == ("unsupported_media", 4150)
    assert body["msg"] == "file type pdf is not accepted here"
    async with app_client(settings.model_copy(update={"media_video_max_bytes": 4096})) as c:
        clip = colour_video(seconds=3, size=(320, 240))
        assert len(clip) > 4096
        status, body = await upload(c, clip, "big.mp4")
        assert status == 413 and (body["error"], body["errcode"]) == ("media_too_large", 4130)
        assert body["msg"].startswith("video too large")
    assert stored_files(settings) == []
