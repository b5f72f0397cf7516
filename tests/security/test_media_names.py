"""Uploads are public by unguessable name (docs/media.md): each stored file gets 128
random bits as its name (never the client's file name), and nothing lists them."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from imhub.config import Settings
from tests.media.media_helpers import login, stored_files, upload
from tests.media.media_samples import image_bytes

NAME = re.compile(r"^/mnt/([0-9a-f]{32})\.(jpg|png)$")


async def test_names_are_random_128_bit_and_unlisted(client: TestClient, settings: Settings) -> None:
    await login(client)
    stems = []
    for i in range(8):
        fmt = "PNG" if i % 2 else "JPEG"
        status, body = await upload(client, image_bytes(fmt), filename=f"passwd{i}.php")
        assert status == 200 and body["code"] == 0, body
        m = NAME.match(body["data"])
        assert m, body["data"]  # server-chosen name and extension, no client path
        stems.append(m.group(1))
    assert len(set(stems)) == len(stems)
    status, body = await upload(client, image_bytes("PNG"), filename="../../etc/passwd")
    assert body["code"] == -1 or NAME.match(body["data"]), body  # refused, or renamed like any other
    # 128 bits each: across 8 names, every hex digit position varies (a counter or a
    # timestamp prefix would not); 16 random bytes of each name are all used.
    assert all(len(bytes.fromhex(s)) == 16 for s in stems)
    assert len({s[:8] for s in stems}) == len(stems), "no shared (time-like) prefix"
    files = {p.name for p in stored_files(settings)}
    assert not any("passwd" in f or ".php" in f for f in files)

    # No directory listing, no index, no guessing by neighbours.
    for path in ("/mnt/", "/mnt", "/mnt/.", "/mnt/%2e%2e/", "/mnt/?C=M;O=D"):
        r = await client.get(path, allow_redirects=False)
        text = await r.text()
        # 404, or "/mnt/.." normalised to "/" and redirected to the login page
        assert r.status in (404, 405) or r.headers.get("Location", "").endswith("login.shtml"), (path, r.status)
        assert not any(s in text for s in stems), path
    neighbour = f"{int(stems[0], 16) + 1:032x}"
    r = await client.get(f"/mnt/{neighbour}.jpg")
    assert r.status == 404
    # The name is the capability: fetching needs no session.
    client.session.cookie_jar.clear()
    r = await client.get(f"/mnt/{stems[0]}.jpg")  # stems[0] was a JPEG
    assert r.status == 200
