"""Stored media names and what they are served as.

Every stored object gets a generated name ``<32 hex>[_t].<ext>`` (``_t`` marks a
thumbnail). The extension is chosen by the server from the sniffed content, never from
the client, and it alone decides the ``Content-Type`` the file is served with — so the
table below is the whole allow-list of what ``/mnt/`` (or a bucket/CDN) ever serves.
"""

from __future__ import annotations

import re
import secrets

# extension -> Content-Type. Only images are shown inline; everything else is served
# as an attachment (see serving_headers).
CONTENT_TYPES: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "webm": "audio/webm",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "7z": "application/x-7z-compressed",
}
INLINE_EXTENSIONS = frozenset({"jpg", "png", "gif", "webp"})

# Strict: no slashes, no dots other than the one before a known extension, so a name can
# never escape the media directory or pick its own content type.
NAME_RE = re.compile(r"^[0-9a-f]{32}(?:_t)?\.(" + "|".join(map(re.escape, CONTENT_TYPES)) + r")$")

# Generated names never change content, so caches may keep them forever.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def new_stem() -> str:
    """128 random bits: unguessable, which is what keeps media private (docs/media.md)."""
    return secrets.token_hex(16)


def is_valid_name(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def serving_headers(name: str) -> dict[str, str]:
    """Headers every copy of ``name`` is served with (app, S3 object metadata, CDN)."""
    ext = extension(name)
    headers = {
        "Content-Type": CONTENT_TYPES[ext],
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    if ext not in INLINE_EXTENSIONS:
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return headers


def join_url(base: str, name: str) -> str:
    """The public URL of stored media ``name`` under ``base``."""
    return base.rstrip("/") + "/" + name
