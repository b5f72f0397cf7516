"""Stored media names and what they are served as.

Every stored object gets a generated name ``<32 hex>[_t].<ext>`` (``_t`` marks a
thumbnail). The extension is chosen by the server from the sniffed content, never from
the client, and it alone decides the ``Content-Type`` the file is served with — so the
table below is the whole allow-list of what ``/mnt/`` (or a bucket/CDN) ever serves.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from urllib.parse import quote

# extension -> Content-Type. Images, voice and video are shown inline (they cannot run
# script: nosniff, our own type, a sandboxing CSP); files are served as attachments
# (see serving_headers).
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
INLINE_EXTENSIONS = frozenset({"jpg", "png", "gif", "webp", "webm", "ogg", "m4a", "mp4", "aac", "mp3", "wav"})
# Names a download of a stored file may carry besides its own extension: the same
# container under the name people know it by (a .docx is a zip). Any other extension is
# replaced, so a PDF/HTML polyglot can never be saved as page.html.
EXTENSION_ALIASES: dict[str, frozenset[str]] = {
    "jpg": frozenset({"jpeg"}),
    "zip": frozenset({"docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"}),
    "gz": frozenset({"tgz"}),
}
MAX_DOWNLOAD_NAME = 150  # characters, before the extension is fixed

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


def serving_headers(name: str, download: str = "") -> dict[str, str]:
    """Headers every copy of ``name`` is served with (app, S3 object metadata, CDN).
    ``download`` is the name a file should be saved as (the ``name`` of a file message,
    passed back as ``?name=``); it is made safe by :func:`download_name`."""
    ext = extension(name)
    headers = {
        "Content-Type": CONTENT_TYPES[ext],
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    if ext not in INLINE_EXTENSIONS:
        headers["Content-Disposition"] = content_disposition(download_name(download, ext) or name)
    return headers


def download_name(wanted: str, ext: str) -> str:
    """``wanted`` as a safe file name ending in ``.ext`` (or an alias), or "" if nothing
    of it is usable: no directories, no control or format characters, no leading dots."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", wanted))[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] not in "CZ" or c == " ")
    base = base.strip(" .")[:MAX_DOWNLOAD_NAME].strip(" .")
    if not base:
        return ""
    stem, dot, given = base.rpartition(".")
    given = given.lower()
    if dot and (given == ext or given in EXTENSION_ALIASES.get(ext, ())):
        return f"{stem}.{given}"
    return f"{base}.{ext}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact UTF-8 ``filename*``
    (RFC 6266 §4.3, RFC 5987): old clients get a readable fallback, new ones the name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%;' else "_" for c in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def join_url(base: str, name: str) -> str:
    """The public URL of stored media ``name`` under ``base``."""
    return base.rstrip("/") + "/" + name
