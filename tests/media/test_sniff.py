"""Content sniffing: the bytes decide, never the name."""

from __future__ import annotations

import pytest
from media_samples import (
    AAC_ADTS,
    HTML,
    M4A,
    MP3_ID3,
    MP4_ISOM,
    OGG_OPUS,
    PDF,
    WEBM,
    animated_gif,
    image_bytes,
    wav_bytes,
)

from imhub.media.sniff import HEAD_BYTES, refine, sniff


@pytest.mark.parametrize(
    ("data", "kind", "ext"),
    [
        (image_bytes("JPEG"), "image", "jpg"),
        (image_bytes("PNG"), "image", "png"),
        (animated_gif(), "image", "gif"),
        (image_bytes("WEBP"), "image", "webp"),
        (wav_bytes(), "voice", "wav"),
        (MP3_ID3, "voice", "mp3"),
        (b"\xff\xfb\x90\x64" + b"\0" * 100, "voice", "mp3"),
        (OGG_OPUS, "voice", "ogg"),
        (WEBM, "voice", "webm"),
        (M4A, "voice", "m4a"),
        (AAC_ADTS, "voice", "aac"),
        (MP4_ISOM, "video", "mp4"),
        (PDF, "file", "pdf"),
        (b"PK\x03\x04" + b"\0" * 60, "file", "zip"),
    ],
)
def test_sniff_by_magic(data: bytes, kind: str, ext: str) -> None:
    s = sniff(data[:HEAD_BYTES])
    assert s is not None and (s.kind, s.ext) == (kind, ext)


@pytest.mark.parametrize(
    "data",
    [HTML, b"", b"GIF8", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"\x1a\x45\xdf\xa3matroska", b"MZ\x90\x00"],
)
def test_unknown_is_none(data: bytes) -> None:
    assert sniff(data) is None


def test_hint_only_chooses_between_safe_readings() -> None:
    video = sniff(MP4_ISOM)
    assert video is not None
    assert refine(video, "m4a").ext == "m4a" and refine(video, "m4a").kind == "voice"
    assert refine(video, "mp4") == video
    jpeg = sniff(image_bytes("JPEG"))
    assert jpeg is not None and refine(jpeg, "mp3") == jpeg  # a hint never changes an image
