"""Uploads: decide what a file is, check it against its kind's cap, validate and
re-encode images (with a thumbnail), store everything under generated names.

The web layer streams the body and hands over bytes it has already bounded by
:meth:`MediaService.cap_for`; nothing here trusts a client name or Content-Type.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from imhub import metrics
from imhub.config import Settings
from imhub.media import audio, images
from imhub.media.errors import MediaRejected, MediaTooLarge
from imhub.media.names import CONTENT_TYPES, new_stem
from imhub.media.sniff import HEAD_BYTES, Kind, Sniffed, refine, sniff
from imhub.media.storage import Storage, build_storage


@dataclass(frozen=True, slots=True)
class StoredMedia:
    url: str
    name: str
    kind: Kind
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    thumb: str | None = None
    duration: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The richer reply next to the seed's ``data: url``; unknown fields left out."""
        out: dict[str, Any] = {"url": self.url, "kind": self.kind, "mime": self.mime, "size": self.size}
        for key in ("width", "height", "thumb", "duration"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class MediaService:
    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self._settings = settings
        self.storage: Storage = storage or build_storage(settings)

    # --- deciding -------------------------------------------------------------------
    def identify(self, head: bytes) -> Sniffed:
        """What the upload is, from its first bytes; refuses kinds we do not take."""
        if not head:
            raise MediaRejected("the file is empty")
        sniffed = sniff(head)
        if sniffed is None:
            raise MediaRejected("unsupported file type (allowed: JPEG, PNG, GIF, WebP images; voice; video)")
        if sniffed.kind == "file" and sniffed.ext not in self._settings.media_file_kinds:
            raise MediaRejected(f"file type {sniffed.ext} is not accepted here")
        return sniffed

    def cap_for(self, kind: Kind) -> int:
        s = self._settings
        per_kind = {
            "image": s.media_image_max_bytes,
            "voice": s.media_voice_max_bytes,
            "video": s.media_video_max_bytes,
            "file": s.media_file_max_bytes,
        }[kind]
        return min(per_kind, s.max_upload_bytes)

    def reading_cap(self, sniffed: Sniffed) -> int:
        """Cap while the body is still streaming: an MP4 may yet turn out to be a voice
        note (see sniff.refine), so allow the larger of the two and re-check after."""
        if sniffed.kind == "video":
            return max(self.cap_for("video"), self.cap_for("voice"))
        return self.cap_for(sniffed.kind)

    def too_large(self, kind: Kind) -> MediaTooLarge:
        return MediaTooLarge(f"{kind} too large (at most {self.cap_for(kind)} bytes)")

    # --- storing --------------------------------------------------------------------
    async def store(self, data: bytes, hint: str = "") -> StoredMedia:
        """Validate and store a complete upload; returns where it is and what it is."""
        stored = await self._store(data, hint)
        metrics.uploads.labels(stored.kind).inc()
        metrics.upload_bytes.labels(stored.kind).inc(stored.size)
        return stored

    async def _store(self, data: bytes, hint: str) -> StoredMedia:
        sniffed = refine(self.identify(data[:HEAD_BYTES]), hint)
        if len(data) > self.cap_for(sniffed.kind):
            raise self.too_large(sniffed.kind)
        stem = new_stem()
        if sniffed.kind == "image":
            return await self._store_image(stem, data, sniffed)
        name = f"{stem}.{sniffed.ext}"
        duration = await asyncio.to_thread(audio.duration_seconds, data) if sniffed.kind == "voice" else None
        await self.storage.put(name, data, sniffed.mime)
        return StoredMedia(self.storage.url(name), name, sniffed.kind, sniffed.mime, len(data), duration=duration)

    async def _store_image(self, stem: str, data: bytes, sniffed: Sniffed) -> StoredMedia:
        assert sniffed.pillow_format is not None
        # Pillow work is CPU-bound and blocking: keep it off the event loop.
        img = await asyncio.to_thread(
            images.process_image,
            data,
            sniffed.pillow_format,
            self._settings.media_image_max_pixels,
            self._settings.media_thumb_max_side,
        )
        name = f"{stem}.{sniffed.ext}"
        thumb_name = f"{stem}_t.{img.thumb_ext}"
        await self.storage.put(thumb_name, img.thumb, CONTENT_TYPES[img.thumb_ext])
        try:
            await self.storage.put(name, img.data, sniffed.mime)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.storage.delete(thumb_name)
            raise
        return StoredMedia(
            self.storage.url(name),
            name,
            "image",
            sniffed.mime,
            len(img.data),
            width=img.width,
            height=img.height,
            thumb=self.storage.url(thumb_name),
        )
