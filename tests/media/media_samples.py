"""Test files built in code (no binary fixtures): photos, odd images, crafted bombs,
minimal audio headers."""

from __future__ import annotations

import functools
import io
import struct
import wave
import zlib

from PIL import Image, ImageChops


@functools.cache
def photo_jpeg(target: int = 512 * 1024, size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A photographic-ish JPEG (gradients + sensor-like noise) of about ``target`` bytes."""
    w, h = size
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
            Image.radial_gradient("L").resize(size),
        ),
    )
    noise = Image.merge("RGB", [Image.effect_noise((w, h), 40) for _ in range(3)])
    img = ImageChops.blend(base, noise, 0.25)
    best = b""
    low, high = 30, 98
    while low <= high:  # size grows with quality: bisect towards the target
        quality = (low + high) // 2
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        data = buf.getvalue()
        if abs(len(data) - target) < abs(len(best) - target):
            best = data
        if len(data) < target:
            low = quality + 1
        else:
            high = quality - 1
    return best


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object) -> bytes:
    img = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def jpeg_with_exif(size: tuple[int, int] = (80, 40), orientation: int = 6) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90°" and carries GPS and a camera serial."""
    img = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPSInfo
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def animated_gif(frames: int = 4, size: tuple[int, int] = (40, 30)) -> bytes:
    imgs = [Image.new("RGB", size, (i * 60 % 256, 80, 160)) for i in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, "GIF", save_all=True, append_images=imgs[1:], duration=120, loop=0)
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims width x height (1-bit grey): well-formed chunks
    with correct CRCs, a few compressed zero rows of IDAT. Decoding it would need
    GBs; a server must refuse it from the header alone."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + (width + 7) // 8) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def wav_bytes(seconds: float = 1.5, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * seconds))
    return buf.getvalue()


# Minimal headers: enough for the sniffer (and for storing as-is), not playable.
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\0" * 400
OGG_OPUS = b"OggS\x00\x02" + b"\0" * 20 + b"OpusHead" + b"\0" * 300
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\0" * 300
MP4_ISOM = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\0" * 300
M4A = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2" + b"\0" * 300
AAC_ADTS = b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\0" * 300
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
