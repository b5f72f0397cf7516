"""Uploads: decide what a file is, check it against its kind's cap and the uploader's
rate and quota, validate and re-encode images (with a thumbnail), remux voice and video
without their metadata, store everything under generated names and record it.

The web layer streams the body and hands over bytes it has already bounded by
:meth:`MediaService.cap_for`; nothing here trusts a client name or Content-Type.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from imhub import metrics
from imhub.clock import now_ms
from imhub.config import Settings
from imhub.errors import RateLimited, Unauthorized
from imhub.media import avmedia, images
from imhub.media.decode_pool import DecodePool
from imhub.media.errors import MediaRejected, MediaTooLarge, MediaUnsupported
from imhub.media.ledger import MediaLedger
from imhub.media.names import CONTENT_TYPES, extension, new_stem
from imhub.media.sniff import HEAD_BYTES, Kind, Sniffed, refine, sniff
from imhub.media.storage import Storage, build_storage
from imhub.ratelimit import SlidingWindowLimiter


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
    duration_ms: int | None = None
    thumb_name: str | None = None  # bookkeeping, not part of the reply
    thumb_size: int = 0

    def as_json(self) -> dict[str, Any]:
        """The richer reply next to the seed's ``data: url``; unknown fields left out."""
        out: dict[str, Any] = {"url": self.url, "kind": self.kind, "mime": self.mime, "size": self.size}
        for key in ("width", "height", "thumb", "duration", "duration_ms"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class MediaService:
    def __init__(self, settings: Settings, storage: Storage | None = None, ledger: MediaLedger | None = None) -> None:
        self._settings = settings
        self.storage: Storage = storage or build_storage(settings)
        # None only for tests of the pure parts; the app always passes one.
        self._ledger = ledger
        self.pool = DecodePool(
            settings.media_decode_workers, settings.media_decode_per_user, settings.media_decode_memory_mb * 1024 * 1024
        )
        self._user_rate = SlidingWindowLimiter(settings.media_uploads_per_minute, 60)
        self._anonymous_rate = (
            SlidingWindowLimiter(settings.media_anonymous_uploads_per_hour, 3600)
            if settings.media_anonymous_uploads_per_hour
            else None
        )

    def close(self) -> None:
        self.pool.close()

    # --- deciding -------------------------------------------------------------------
    def identify(self, head: bytes) -> Sniffed:
        """What the upload is, from its first bytes; refuses kinds we do not take."""
        if not head:
            raise MediaRejected("the file is empty")
        sniffed = sniff(head)
        if sniffed is None:
            raise MediaUnsupported("unsupported file type (allowed: JPEG, PNG, GIF, WebP images; voice; video)")
        if sniffed.kind == "file" and sniffed.ext not in self._settings.media_file_kinds:
            raise MediaUnsupported(f"file type {sniffed.ext} is not accepted here")
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

    def anonymous_cap(self) -> int:
        return min(self._settings.media_anonymous_max_bytes, self.cap_for("image"))

    def too_large(self, kind: Kind) -> MediaTooLarge:
        return MediaTooLarge(f"{kind} too large (at most {self.cap_for(kind)} bytes)")

    # --- who may upload -------------------------------------------------------------
    async def admit(self, user_id: int) -> None:
        """Before reading a signed-in user's body: their upload rate and storage quota."""
        wait = self._user_rate.retry_after(user_id)
        if wait > 0:
            raise RateLimited("too many uploads, try again later", retry_after=math.ceil(wait))
        quota = self._settings.media_user_quota_bytes
        if quota and self._ledger is not None and await self._ledger.usage(user_id) >= quota:
            raise MediaRejected(f"storage quota used up (at most {quota} bytes per user)")
        self._user_rate.hit(user_id)

    def admit_anonymous(self, ip: str) -> None:
        """Before reading an upload without a session (the seed's register page)."""
        if self._anonymous_rate is None:
            raise MediaRejected("uploads need a session here")
        wait = self._anonymous_rate.retry_after(ip)
        if wait > 0:
            raise RateLimited("too many uploads from this address, try again later", retry_after=math.ceil(wait))
        self._anonymous_rate.hit(ip)

    async def claim(self, url: str, owner: int) -> None:
        """A new account uses an avatar it uploaded before registering: keep it."""
        base = self.storage.url("")
        if self._ledger is not None and url.startswith(base):
            await self._ledger.claim(url[len(base):], owner)

    async def sweep_unclaimed(self) -> int:
        """Delete anonymous uploads nobody registered with in time; returns how many."""
        if self._ledger is None:
            return 0
        cutoff = now_ms() - self._settings.media_pending_ttl_seconds * 1000
        gone = 0
        while batch := await self._ledger.take_unclaimed(cutoff):
            for item in batch:
                for name in (item.name, item.thumb):
                    if name:
                        with contextlib.suppress(Exception):
                            await self.storage.delete(name)
            gone += len(batch)
        return gone

    # --- storing --------------------------------------------------------------------
    async def store(self, data: bytes, hint: str = "", *, owner: int | None = None, ip: str = "") -> StoredMedia:
        """Validate and store a complete upload; returns where it is and what it is.
        ``owner`` None is an anonymous upload (images only, small, swept unless claimed)."""
        if owner is None:
            if self.identify(data[:HEAD_BYTES]).kind != "image":
                raise Unauthorized("only an image may be uploaded without a session")
            if len(data) > self.anonymous_cap():
                raise MediaTooLarge(f"image too large (at most {self.anonymous_cap()} bytes without a session)")
        quota = self._settings.media_user_quota_bytes
        if owner is not None and quota and self._ledger is not None:
            used = await self._ledger.usage(owner)
            if used + len(data) > quota:
                raise MediaRejected(f"storage quota exceeded ({used} of {quota} bytes used)")
        stored = await self._store(data, hint, ("u", owner) if owner is not None else ("ip", ip))
        if self._ledger is not None:
            size = stored.size + stored.thumb_size
            await self._ledger.record(stored.name, stored.thumb_name, owner, size, now_ms())
        metrics.uploads.labels(stored.kind).inc()
        metrics.upload_bytes.labels(stored.kind).inc(stored.size)
        return stored

    async def _store(self, data: bytes, hint: str, who: tuple[str, object]) -> StoredMedia:
        sniffed = refine(self.identify(data[:HEAD_BYTES]), hint)
        if len(data) > self.cap_for(sniffed.kind):
            raise self.too_large(sniffed.kind)
        stem = new_stem()
        if sniffed.kind == "image":
            return await self._store_image(stem, data, sniffed, who)
        if sniffed.kind == "video":
            return await self._store_video(stem, data, sniffed, who)
        name = f"{stem}.{sniffed.ext}"
        duration = None
        if sniffed.kind == "voice":
            # Remuxed in a worker: validates the container and drops its metadata.
            remuxed = await self.pool.run(who, avmedia.remux, data, sniffed.ext)
            data, duration = remuxed.data, remuxed.duration
        await self.storage.put(name, data, sniffed.mime)
        return StoredMedia(self.storage.url(name), name, sniffed.kind, sniffed.mime, len(data), duration=duration)

    async def _store_video(self, stem: str, data: bytes, sniffed: Sniffed, who: tuple[str, object]) -> StoredMedia:
        # Remux and poster frame in one worker: the decoding is FFmpeg's, bounded there.
        video = await self.pool.run(
            who, avmedia.process_video, data, sniffed.ext, self._settings.media_image_max_pixels
        )
        name = f"{stem}.{sniffed.ext}"
        thumb_name = f"{stem}_t.jpg" if video.poster else None
        await self._put_pair(name, video.data, sniffed.mime, thumb_name, video.poster)
        return StoredMedia(
            self.storage.url(name),
            name,
            "video",
            sniffed.mime,
            len(video.data),
            width=video.width,
            height=video.height,
            thumb=self.storage.url(thumb_name) if thumb_name else None,
            duration_ms=video.duration_ms,
            thumb_name=thumb_name,
            thumb_size=len(video.poster or b""),
        )

    async def _put_pair(self, name: str, data: bytes, mime: str, thumb_name: str | None, thumb: bytes | None) -> None:
        """The thumbnail first, then the original; no thumbnail left behind if that fails."""
        if thumb_name is None or thumb is None:
            await self.storage.put(name, data, mime)
            return
        await self.storage.put(thumb_name, thumb, CONTENT_TYPES[extension(thumb_name)])
        try:
            await self.storage.put(name, data, mime)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.storage.delete(thumb_name)
            raise

    async def _store_image(self, stem: str, data: bytes, sniffed: Sniffed, who: tuple[str, object]) -> StoredMedia:
        assert sniffed.pillow_format is not None
        # Decoding is CPU- and memory-heavy: a worker process of the bounded pool.
        img = await self.pool.run(
            who,
            images.process_image,
            data,
            sniffed.pillow_format,
            self._settings.media_image_max_pixels,
            self._settings.media_thumb_max_side,
        )
        name = f"{stem}.{sniffed.ext}"
        thumb_name = f"{stem}_t.{img.thumb_ext}"
        await self._put_pair(name, img.data, sniffed.mime, thumb_name, img.thumb)
        return StoredMedia(
            self.storage.url(name),
            name,
            "image",
            sniffed.mime,
            len(img.data),
            width=img.width,
            height=img.height,
            thumb=self.storage.url(thumb_name),
            thumb_name=thumb_name,
            thumb_size=len(img.thumb),
        )
