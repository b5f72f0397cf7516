"""Voice-note duration, best effort (mutagen reads container headers, no decoding).
Blocking: call through ``asyncio.to_thread``. WebM is not supported by mutagen and
MediaRecorder's WebM often carries no duration anyway; the client still sends its own
``amount`` in the message."""

from __future__ import annotations

import io

import mutagen


def duration_seconds(data: bytes) -> float | None:
    try:
        info = mutagen.File(io.BytesIO(data))
    except Exception:  # any parse problem just means "unknown"
        return None
    length = getattr(getattr(info, "info", None), "length", None)
    if not isinstance(length, int | float) or length <= 0:
        return None
    return round(float(length), 2)
