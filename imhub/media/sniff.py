"""Decide what an upload is from its first bytes (magic numbers), never from its name
or the client's Content-Type: a ``.png`` that is really HTML is refused, a JPEG named
``.txt`` is a JPEG.

Plain signature checks are enough for the handful of formats we accept; each format is
then validated further by whoever handles its kind (Pillow decodes every image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imhub.media.names import CONTENT_TYPES

Kind = Literal["image", "voice", "video", "file"]

# Enough for every signature below (the EBML DocType of a WebM header sits within ~40).
HEAD_BYTES = 64

# ftyp major brands that mean "audio only" (iTunes/AAC audio, audio books).
_AUDIO_MP4_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
# Client hints (the seed's ``filetype``) that say an ISO-BMFF upload is a voice recording:
# browsers' MediaRecorder writes generic brands (isom/mp42/iso5) even for audio.
AUDIO_HINTS = frozenset({"m4a", "mp4a", "aac", "mp3", "wav", "ogg", "opus", "webm", "amr"})


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: Kind
    ext: str
    pillow_format: str | None = None  # images only: the one decoder Pillow may use

    @property
    def mime(self) -> str:
        return CONTENT_TYPES[self.ext]


def sniff(head: bytes) -> Sniffed | None:
    """The type of a file starting with ``head`` (its first HEAD_BYTES bytes), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpg", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png", "PNG")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif", "GIF")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "webp", "WEBP")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("voice", "wav")
    if head.startswith(b"OggS"):
        return Sniffed("voice", "ogg")  # Opus or Vorbis; both play as audio/ogg
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return Sniffed("voice", "webm")  # MediaRecorder's audio/webm;codecs=opus
    if head[4:8] == b"ftyp":
        if head[8:12] in _AUDIO_MP4_BRANDS:
            return Sniffed("voice", "m4a")
        return Sniffed("video", "mp4")  # may become voice by the client's hint, see refine
    if head.startswith(b"ID3"):
        return Sniffed("voice", "mp3")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        if layer == 0b01:  # MPEG audio layer III
            return Sniffed("voice", "mp3")
        if layer == 0b00 and head[1] & 0xF6 == 0xF0:  # ADTS
            return Sniffed("voice", "aac")
    if head.startswith(b"%PDF-"):
        return Sniffed("file", "pdf")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return Sniffed("file", "zip")  # also docx/xlsx/odt/apk: all zip containers
    if head.startswith(b"\x1f\x8b\x08"):
        return Sniffed("file", "gz")
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Sniffed("file", "7z")
    return None


def refine(sniffed: Sniffed, hint: str) -> Sniffed:
    """Use the client's ``filetype`` hint only to choose between two safe readings of
    the same bytes (an MP4 container holding a voice note or a video)."""
    if sniffed.kind == "video" and hint in AUDIO_HINTS:
        return Sniffed("voice", "m4a")
    return sniffed
