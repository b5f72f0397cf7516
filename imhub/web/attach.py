"""``POST /attach/upload`` (the seed's upload) and ``GET /mnt/{name}[?name=<file name>]``
(serving; the optional name is what a file is saved as).

The upload body is streamed: the first bytes decide the kind and so the cap, and we
stop reading at cap+1 bytes. The reply keeps the seed's ``data: "<url>"`` and adds a
``file`` object (kind, mime, size, dimensions, thumbnail, duration) for richer clients.

A request with no credentials at all is the seed's register page uploading an avatar
before the account exists: it may upload one small image (rate-limited per address);
the upload is swept after a day unless a registration uses it. A request with bad
credentials is refused (401), as is anything but an image without a session.
"""

from __future__ import annotations

import re

import orjson
from aiohttp import BodyPartReader, web

from imhub.errors import Unauthorized
from imhub.media.errors import MediaRejected, MediaTooLarge
from imhub.media.names import is_valid_name, serving_headers
from imhub.media.service import MediaService
from imhub.media.sniff import HEAD_BYTES, Sniffed
from imhub.media.storage_local import LocalStorage
from imhub.web.auth import client_address, current_user, request_token
from imhub.web.context import services

CHUNK = 64 * 1024
MAX_PARTS = 8  # file, filetype and a few fields some clients add
SMALL_FIELD_MAX = 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, small fields
HINT_RE = re.compile(r"^[a-z0-9]{1,10}$")
# Served media must never run script, even if opened directly in a tab.
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


# --- upload -----------------------------------------------------------------------------
async def upload(request: web.Request) -> web.Response:
    svc = services(request)
    media = svc.media
    owner: int | None = None
    ip = client_address(request)
    if request_token(request):
        owner = await current_user(request)  # 401 before a single body byte is read
        await media.admit(owner)
        limit = svc.settings.max_upload_bytes
    else:
        media.admit_anonymous(ip)
        limit = svc.settings.media_anonymous_max_bytes
    if request.content_type != "multipart/form-data":
        raise MediaRejected("expected multipart/form-data with a file field")
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        without = "" if owner is not None else " without a session"
        raise MediaTooLarge(f"upload too large (at most {limit} bytes{without})")

    try:
        data, hint = await read_form(request, media, anonymous=owner is None)
    except ValueError:
        # aiohttp's multipart parser raises ValueError on a malformed body (no or empty
        # boundary, a missing start boundary, bad part headers): the client's fault, so
        # 400, not 500 (found by tests/fuzz/test_upload_multipart_fuzz.py).
        raise MediaRejected("malformed multipart body") from None
    if data is None:
        raise MediaRejected("missing file field")

    stored = await media.store(data, hint, owner=owner, ip=ip)
    body = {"code": 0, "msg": "", "data": stored.url, "file": stored.as_json()}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def read_form(
    request: web.Request, media: MediaService, *, anonymous: bool = False
) -> tuple[bytes | None, str]:
    """The ``file`` part and the ``filetype`` hint of an upload form."""
    data: bytes | None = None
    hint = ""
    reader = await request.multipart()
    for _ in range(MAX_PARTS + 1):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise MediaRejected("nested multipart is not accepted")
        if part.name == "file":
            if data is not None:
                raise MediaRejected("one file per upload")
            check_filename(part.filename)
            data = await read_file(part, media, anonymous=anonymous)
        elif part.name == "filetype":
            hint = parse_hint(await read_small(part))
        else:
            await read_small(part)  # unknown small fields are ignored
    else:
        raise MediaRejected("too many form fields")
    return data, hint


async def read_file(part: BodyPartReader, media: MediaService, *, anonymous: bool = False) -> bytes:
    """The file part's bytes, never holding more than its kind's cap + 1."""
    buf = bytearray()
    sniffed: Sniffed | None = None
    cap = media.anonymous_cap() if anonymous else media.cap_for("video")  # until sniffed
    while True:
        chunk = await part.read_chunk(min(CHUNK, cap + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
        if sniffed is None and len(buf) >= HEAD_BYTES:
            sniffed = media.identify(bytes(buf[:HEAD_BYTES]))  # wrong type: stop reading now
            if anonymous and sniffed.kind != "image":
                raise Unauthorized("only an image may be uploaded without a session")
            cap = media.anonymous_cap() if anonymous else media.reading_cap(sniffed)
        if len(buf) > cap:
            if anonymous:
                raise MediaTooLarge(f"image too large (at most {cap} bytes without a session)")
            raise media.too_large(sniffed.kind if sniffed else "file")
    if sniffed is None:
        media.identify(bytes(buf))  # short file: empty or unknown is refused here
    return bytes(buf)


async def read_small(part: BodyPartReader) -> str:
    raw = bytearray()
    while chunk := await part.read_chunk(SMALL_FIELD_MAX + 1 - len(raw)):
        raw += chunk
        if len(raw) > SMALL_FIELD_MAX:
            raise MediaRejected(f"form field {part.name!r} too long")
    return raw.decode("utf-8", "replace")


def check_filename(filename: str | None) -> None:
    """We never use the client's name, but a path in it means a broken or hostile client."""
    if not filename:
        return
    if (
        "/" in filename
        or "\\" in filename
        or ".." in filename
        or len(filename) > 255
        or any(ord(c) < 32 for c in filename)
    ):
        raise MediaRejected("invalid file name")


def parse_hint(value: str) -> str:
    """The seed's ``filetype`` (``.mp3``): only a hint between safe readings of the bytes."""
    hint = value.strip().lower().removeprefix(".")
    if hint and not HINT_RE.match(hint):
        raise MediaRejected("invalid filetype")
    return hint


# --- serving ----------------------------------------------------------------------------
async def serve(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not is_valid_name(name):
        raise web.HTTPNotFound(reason="no such file")
    # ?name= is the name a file message gave it: only what the file is saved as (its
    # extension is ours; a URL with another name is still a capability to the same bytes).
    headers = {**serving_headers(name, request.query.get("name", "")), "Content-Security-Policy": MEDIA_CSP}
    storage = services(request).media.storage
    if isinstance(storage, LocalStorage):
        path = storage.path(name)
        if not path.is_file():
            raise web.HTTPNotFound(reason="no such file")
        # FileResponse: sendfile, Range (voice/video seeking), ETag / If-Modified-Since.
        return web.FileResponse(path, headers=headers)
    # Another backend behind the default /mnt/ base URL: proxy it (set media_base_url to
    # the bucket or CDN in production so media bypasses the app).
    try:
        data = await storage.get(name)
    except FileNotFoundError:
        raise web.HTTPNotFound(reason="no such file") from None
    return web.Response(body=data, headers=headers)


def setup(app: web.Application) -> None:
    app.router.add_post("/attach/upload", upload)
    app.router.add_get("/mnt/{name}", serve)
