"""Voice and video: validate the container and remux it without its metadata (PyAV,
i.e. FFmpeg's demuxers and muxers). Blocking: the service runs it in a worker process
of :mod:`imhub.media.decode_pool`.

Only packets are copied — nothing is decoded or re-encoded, so this is cheap and
lossless — and nothing else: container tags (ID3, Vorbis comments, MP4 ``udta``/``meta``
with a GPS ``©xyz`` atom, WAV ``LIST/INFO``), chapters, attachments, cover-art streams,
data/subtitle streams and any bytes appended after the media are gone. A file FFmpeg
cannot parse, or one without an audio or video stream, is refused.

A video also gets a poster: its first frame, decoded from the remuxed copy (only until
one frame comes out), scaled down and written as a JPEG; with its width, height and
duration in milliseconds for the message body.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
from PIL import Image

from imhub.media.errors import MediaRejected

# Our extension -> FFmpeg muxer, and the demuxer that must have recognised the input
# (an .mp3 upload that FFmpeg reads as something else is refused, not converted).
MUXERS = {
    "mp4": "mp4",
    "m4a": "mp4",  # not "ipod": that one refuses Opus, which MediaRecorder's MP4 may hold
    "webm": "webm",
    "ogg": "ogg",
    "mp3": "mp3",
    "aac": "adts",
    "wav": "wav",
}
DEMUXERS = {
    "mp4": "mov",
    "m4a": "mov",
    "webm": "matroska",
    "ogg": "ogg",
    "mp3": "mp3",
    "aac": "aac",
    "wav": "wav",
}
MAX_PACKETS = 2_000_000  # far above any capped upload; a guard against a looping demuxer


@dataclass(frozen=True, slots=True)
class Remuxed:
    data: bytes
    duration: float | None  # seconds, when the container knows


@dataclass(frozen=True, slots=True)
class Video:
    data: bytes  # the remuxed container
    duration_ms: int | None
    width: int | None  # None (and no poster) for an MP4 without a video stream
    height: int | None
    poster: bytes | None  # JPEG


POSTER_MAX_SIDE = 640
POSTER_QUALITY = 80
# A first frame comes out within a few packets (B-frame reordering, a codec's delay);
# a stream that yields none after this many has no usable picture.
POSTER_MAX_PACKETS = 300


def process_video(data: bytes, ext: str, max_pixels: int) -> Video:
    """Remux (as :func:`remux`), then take the poster frame and the dimensions."""
    remuxed = remux(data, ext)
    try:
        width, height, poster = _poster(remuxed.data, ext, max_pixels)
    except MediaRejected:
        raise
    except MemoryError:
        raise MediaRejected("file needs too much memory to process") from None
    except Exception:
        raise MediaRejected("the file is damaged or not a valid audio/video file") from None
    duration_ms = round(remuxed.duration * 1000) if remuxed.duration else None
    return Video(remuxed.data, duration_ms, width, height, poster)


def _poster(data: bytes, ext: str, max_pixels: int) -> tuple[int | None, int | None, bytes | None]:
    with av.open(io.BytesIO(data), "r", format=DEMUXERS[ext]) as src:
        if not src.streams.video:
            return None, None, None
        stream = src.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            return None, None, None
        if width * height > max_pixels:
            raise MediaRejected(f"video dimensions too large: {width}x{height} (at most {max_pixels} pixels)")
        for n, packet in enumerate(src.demux(stream)):
            if n >= POSTER_MAX_PACKETS:
                break
            for frame in packet.decode():
                # A phone's portrait clip is stored landscape with a display matrix
                # (kept by the remux): players turn it, so the poster and the size do too.
                rotation = round(frame.rotation / 90) * 90 % 360
                if rotation in (90, 270):
                    width, height = height, width
                return width, height, _jpeg(frame.to_image(), rotation)  # type: ignore[no-untyped-call]
    return width, height, None


def _jpeg(img: Image.Image, rotation: int = 0) -> bytes:
    """``rotation``: degrees counter-clockwise, as FFmpeg's display matrix says."""
    if rotation:
        img = img.rotate(rotation, expand=True)
    img = img.convert("RGB")
    img.thumbnail((POSTER_MAX_SIDE, POSTER_MAX_SIDE))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=POSTER_QUALITY, optimize=True)
    return out.getvalue()


def remux(data: bytes, ext: str) -> Remuxed:
    """The same media in a fresh container of the same format, without metadata."""
    try:
        return _remux(data, ext)
    except MediaRejected:
        raise
    except MemoryError:
        raise MediaRejected("file needs too much memory to process") from None
    except Exception:
        # FFmpeg reports damage with many error types (InvalidDataError, EOFError,
        # ValueError from a muxer refusing a codec...): all mean "not a valid file".
        raise MediaRejected("the file is damaged or not a valid audio/video file") from None


def _remux(data: bytes, ext: str) -> Remuxed:
    with av.open(io.BytesIO(data), "r", format=DEMUXERS[ext], metadata_errors="ignore") as src:
        wanted = [s for s in src.streams if s.type in ("audio", "video") and not _is_cover_art(s)]
        if not wanted:
            raise MediaRejected("the file has no audio or video")
        out_buf = io.BytesIO()
        with av.open(out_buf, "w", format=MUXERS[ext]) as dst:
            mapping = {}
            for stream in wanted:
                copy = dst.add_stream_from_template(stream)
                copy.metadata.clear()  # stream tags: language stays out too
                mapping[stream.index] = copy
            written = 0
            for packet in src.demux(wanted):
                if packet.dts is None and packet.pts is None and packet.size == 0:
                    continue  # the demuxer's end-of-stream flush packet
                packet.stream = mapping[packet.stream.index]
                dst.mux(packet)
                written += 1
                if written > MAX_PACKETS:
                    raise MediaRejected("the file has too many packets")
            if written == 0:
                raise MediaRejected("the file has no audio or video data")
            dst.metadata.clear()
        duration = src.duration / av.time_base if src.duration and src.duration > 0 else None
    return Remuxed(out_buf.getvalue(), round(duration, 2) if duration else None)


def _is_cover_art(stream: av.stream.Stream) -> bool:
    """An embedded picture (ID3 APIC, MP4 covr) shows up as a one-frame video stream."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)
