"""Test files built in code (no binary fixtures): photos, odd images, crafted bombs,
real (silent) voice and video files made with PyAV, carrying metadata tags."""

from __future__ import annotations

import functools
import io
import struct
import wave
import zlib

import av
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


# Tags every sample carries, which the server must not store.
SECRET_TAGS = {"title": "SECRET-TITLE", "artist": "SECRET-ARTIST", "comment": "SECRET-COMMENT"}


def audio_file(muxer: str, codec: str, rate: int = 48000, seconds: float = 1.0, tags: bool = True) -> bytes:
    """A silent mono clip, really encoded (so FFmpeg can parse it), with metadata tags."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as c:
        if tags:
            c.metadata.update(SECRET_TAGS)
        s = c.add_stream(codec, rate=rate, layout="mono")
        sample_fmt = s.codec_context.codec.audio_formats[0].name
        n = s.codec_context.frame_size or 1024
        pts = 0
        while pts < rate * seconds:
            f = av.AudioFrame(format=sample_fmt, layout="mono", samples=n)
            f.sample_rate, f.pts = rate, pts
            for plane in f.planes:
                plane.update(bytes(plane.buffer_size))
            for packet in s.encode(f):
                c.mux(packet)
            pts += n
        for packet in s.encode(None):
            c.mux(packet)
    return buf.getvalue()


def video_file(frames: int = 10, size: tuple[int, int] = (64, 48)) -> bytes:
    """A short grey MP4 (mpeg4 video, no audio) with metadata tags."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        c.metadata.update(SECRET_TAGS)
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            f = av.VideoFrame(size[0], size[1], "yuv420p")
            for plane in f.planes:
                plane.update(b"\x80" * plane.buffer_size)
            f.pts = i
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return buf.getvalue()


RED = (220, 20, 20)


def colour_video(
    seconds: float = 1.5,
    size: tuple[int, int] = (96, 64),
    rgb: tuple[int, int, int] = RED,
    rate: int = 10,
    codec: str = "mpeg4",
    rotation: int = 0,
    left: tuple[int, int, int] | None = None,
) -> bytes:
    """An MP4 of one solid colour (optionally another on the left half), with metadata
    tags the server must drop (``libx264`` for a clip a browser plays: Chromium has no
    MPEG-4 Part 2 decoder); ``rotation`` is a display rotation, counter-clockwise."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        c.metadata.update(SECRET_TAGS)
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        if rotation:  # a display matrix, as a phone writes for a portrait clip (-90)
            s.set_display_rotation(rotation)
        picture = Image.new("RGB", size, rgb)
        if left is not None:  # the left half in another colour, to tell the sides apart
            picture.paste(left, (0, 0, size[0] // 2, size[1]))
        for i in range(round(seconds * rate)):
            f = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
            f.pts = i
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    return buf.getvalue()


GPS = b"+48.8584+002.2945/"


def with_gps_atom(mp4: bytes) -> bytes:
    """``mp4`` with a ``moov/udta/©xyz`` GPS atom, as phones write it (moov is last in
    FFmpeg's output, so growing it moves no sample offsets)."""
    pos = 0
    while pos < len(mp4):
        size, kind = struct.unpack(">I4s", mp4[pos : pos + 8])
        if kind == b"moov":
            assert pos + size == len(mp4), "moov must be the last box"
            xyz_body = struct.pack(">HH", len(GPS), 0x15C7) + GPS
            xyz = struct.pack(">I4s", 8 + len(xyz_body), b"\xa9xyz") + xyz_body
            udta = struct.pack(">I4s", 8 + len(xyz), b"udta") + xyz
            return mp4[:pos] + struct.pack(">I4s", size + len(udta), b"moov") + mp4[pos + 8 :] + udta
        pos += size
    raise AssertionError("no moov box")


MP3_ID3 = audio_file("mp3", "libmp3lame")
OGG_OPUS = audio_file("ogg", "libopus")
WEBM = audio_file("webm", "libopus")
MP4_ISOM = audio_file("mp4", "aac")  # what MediaRecorder writes: generic brand, audio only
M4A = audio_file("ipod", "aac")
AAC_ADTS = audio_file("adts", "aac")
MP4_VIDEO = video_file()
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"


@functools.cache
def png_blank(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG: a few KB for tens of megapixels (the review's
    "4.9 KB PNG of 6320x6320"), which decodes to width x height x 3 bytes of RGB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress((b"\0" * (1 + (width + 7) // 8)) * height, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process (default: this one), MB."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
