"""Pillow work: re-encoding strips metadata, thumbnails are small, bombs are refused."""

from __future__ import annotations

import io

import pytest
from media_samples import animated_gif, image_bytes, jpeg_with_exif, photo_jpeg, png_bomb
from PIL import Image

from imhub.media.errors import MediaRejected
from imhub.media.images import make_thumbnail, process_image

MAX_PIXELS = 40_000_000


def test_photo_thumbnail_is_a_tenth() -> None:
    photo = photo_jpeg()
    assert 480 * 1024 <= len(photo) <= 560 * 1024
    out = process_image(photo, "JPEG", MAX_PIXELS, 320)
    assert (out.width, out.height) == (1600, 1200)
    assert len(out.thumb) <= 60 * 1024
    thumb = Image.open(io.BytesIO(out.thumb))
    assert thumb.format == "JPEG" and max(thumb.size) <= 320 and out.thumb_ext == "jpg"


def test_exif_applied_then_stripped() -> None:
    out = process_image(jpeg_with_exif((80, 40), orientation=6), "JPEG", MAX_PIXELS, 320)
    assert (out.width, out.height) == (40, 80)  # rotated upright
    img = Image.open(io.BytesIO(out.data))
    assert not img.getexif() and "exif" not in img.info
    assert b"SERIAL-12345" not in out.data and b"SERIAL-12345" not in out.thumb


def test_appended_payload_is_dropped() -> None:
    polyglot = image_bytes("PNG") + b"<script>alert(1)</script>PK\x03\x04hidden"
    out = process_image(polyglot, "PNG", MAX_PIXELS, 320)
    assert b"script" not in out.data and b"hidden" not in out.data


def test_transparent_png_gets_webp_thumbnail() -> None:
    out = process_image(image_bytes("PNG", (500, 400), mode="RGBA"), "PNG", MAX_PIXELS, 320)
    thumb = Image.open(io.BytesIO(out.thumb))
    assert out.thumb_ext == "webp" and thumb.mode == "RGBA" and max(thumb.size) == 320
    assert Image.open(io.BytesIO(out.data)).mode == "RGBA"


def test_animated_gif_stays_animated_with_still_thumbnail() -> None:
    out = process_image(animated_gif(frames=5), "GIF", MAX_PIXELS, 320)
    assert out.animated
    assert getattr(Image.open(io.BytesIO(out.data)), "n_frames", 1) == 5
    assert getattr(Image.open(io.BytesIO(out.thumb)), "n_frames", 1) == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_each_format_round_trips(fmt: str) -> None:
    out = process_image(image_bytes(fmt, (120, 90)), fmt, MAX_PIXELS, 320)
    assert Image.open(io.BytesIO(out.data)).format == fmt and (out.width, out.height) == (120, 90)


def test_bomb_refused_from_header() -> None:
    bomb = png_bomb()
    assert len(bomb) < 2048
    with pytest.raises(MediaRejected, match="dimensions too large"):
        process_image(bomb, "PNG", MAX_PIXELS, 320)


def test_configured_pixel_limit_names_the_size() -> None:
    with pytest.raises(MediaRejected, match="10000x5000 \\(at most 40000000 pixels\\)"):
        process_image(png_bomb(10_000, 5_000), "PNG", MAX_PIXELS, 320)


@pytest.mark.parametrize(
    "warning_filter",
    [
        pytest.param("ignore", marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")),
        pytest.param("error", marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")),
    ],
)
def test_pillow_bomb_warning_is_an_error(monkeypatch: pytest.MonkeyPatch, warning_filter: str) -> None:
    # Our setting lets 1500 px through, Pillow's limit (warning level) does not: refused
    # whether or not the process-wide warnings filter is in force.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(MediaRejected, match="dimensions too large"):
        process_image(image_bytes("PNG", (50, 30)), "PNG", MAX_PIXELS, 320)


def test_truncated_jpeg() -> None:
    data = photo_jpeg(target=60 * 1024, size=(400, 300))
    with pytest.raises(MediaRejected, match="damaged or truncated"):
        process_image(data[: len(data) // 2], "JPEG", MAX_PIXELS, 320)


def test_format_must_match_sniffed_decoder() -> None:
    with pytest.raises(MediaRejected):
        process_image(image_bytes("PNG"), "JPEG", MAX_PIXELS, 320)


def test_detailed_thumbnail_lowers_quality_to_fit() -> None:
    # Pure noise at thumbnail size: JPEG q80 would take ~60 KB; a 200 KB original asks
    # for ~20 KB, so the quality must come down (then the side, if still too big).
    noise = Image.merge("RGB", [Image.effect_noise((640, 480), 80) for _ in range(3)])
    data, ext = make_thumbnail(noise, 200_000, 320)
    thumb = Image.open(io.BytesIO(data))
    assert ext == "jpg" and len(data) <= 20_000 and max(thumb.size) <= 320


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])  # APNG and animated WebP
def test_other_animations(fmt: str) -> None:
    frames = [Image.new("RGBA", (30, 20), (i * 80, 0, 0, 255 - i * 40)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0)
    out = process_image(buf.getvalue(), fmt, MAX_PIXELS, 320)
    back = Image.open(io.BytesIO(out.data))
    assert out.animated and getattr(back, "n_frames", 1) == 3 and back.format == fmt
    back.seek(1)
    back.load()
    assert back.info.get("duration") == 200
    assert getattr(Image.open(io.BytesIO(out.thumb)), "n_frames", 1) == 1
