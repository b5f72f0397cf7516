"""Voice and video: validate the container and remux it without its metadata (PyAV,
i.e. FFmpeg's demuxers and muxers). Blocking: the service runs it in a worker process
of :mod:`imhub.media.decode_pool`.

Only packets are copied — nothing is decoded or re-encoded, so this is cheap and
lossless — and nothing else: container tags (ID3, Vorbis comments, MP4 ``udta``/``meta``
with a GPS ``©xyz`` atom, WAV ``LIST/INFO``), chapters, attachments, cover-art streams,
data/subtitle streams and any bytes appended after the media are gone. A file FFmpeg
cannot parse, or one without an audio or video stream, is refused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av

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
