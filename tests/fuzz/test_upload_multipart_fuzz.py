"""Malformed multipart bodies at ``/attach/upload`` (hypothesis): truncated bodies and
boundaries, a boundary in the header that the body does not use, junk preambles, huge
part headers, thousands of parts, odd Content-Disposition and file names. Every request
gets an answer (no hang: each is bounded by a timeout) that is not a 5xx, no stray file
is stored, and the server keeps serving: a normal upload works afterwards.

(Other upload abuse — polyglots, bombs, wrong extensions, size caps — is in tests/media.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from imhub.config import Settings
from tests.media.media_helpers import login, stored_files, upload
from tests.media.media_samples import image_bytes

PNG = image_bytes("PNG", (8, 8))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """120 uploads from one account in seconds: past the per-user upload rate, which
    is not what this test is about."""
    return Settings(data_dir=tmp_path / "data", media_uploads_per_minute=10_000)

BOUNDARY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? "

names = st.sampled_from(["file", "filetype", "", "FILE", "file\x00", 'fi"le', "x" * 300])
filenames = st.one_of(
    st.none(), st.sampled_from(["a.png", "../../etc/passwd", "C:\\boot.ini", "", "a\r\nX-Injected: 1", "é.png"]),
    st.text(max_size=40),
)
bodies = st.one_of(st.just(PNG), st.binary(max_size=200), st.just(PNG[:20]), st.just(b"--\r\n\r\n"))


@st.composite
def part(draw: st.DrawFn, boundary: str) -> bytes:
    disp = "form-data"
    name = draw(names)
    if draw(st.booleans()):
        disp += f'; name="{name}"'
    fn = draw(filenames)
    if fn is not None:
        disp += f'; filename="{fn}"'
    headers = [f"Content-Disposition: {disp}"]
    if draw(st.booleans()):
        headers.append("Content-Type: " + draw(st.sampled_from(["image/png", "text/html", "", "multipart/mixed"])))
    if draw(st.integers(0, 9)) == 0:  # a huge header line
        headers.append("X-Big: " + "A" * draw(st.sampled_from([8_000, 70_000, 300_000])))
    raw = "\r\n".join(headers).encode("utf-8", "surrogatepass")
    return b"--" + boundary.encode() + b"\r\n" + raw + b"\r\n\r\n" + draw(bodies) + b"\r\n"


@st.composite
def multipart(draw: st.DrawFn) -> tuple[str, bytes]:
    boundary = draw(st.text(BOUNDARY_CHARS, min_size=1, max_size=70)).strip() or "b"
    declared = boundary if draw(st.integers(0, 4)) else draw(st.sampled_from(["", "other", '"quoted"', "x" * 200]))
    ctype = f"multipart/form-data; boundary={declared}"
    body = b""
    if draw(st.booleans()):
        body += draw(st.binary(max_size=50))  # preamble junk
    count = draw(st.sampled_from([0, 1, 2, 3, 50, 2000]))
    one = draw(part(boundary))
    more = [draw(part(boundary)) for _ in range(min(count, 3))]
    body += b"".join([one, *more] + [one] * max(0, count - 4))
    ending = draw(st.sampled_from(["close", "none", "half", "nocrlf"]))
    body += {"close": b"--" + boundary.encode() + b"--\r\n", "none": b"", "half": b"--" + boundary.encode()[:1],
             "nocrlf": b"--" + boundary.encode() + b"--"}[ending]
    if draw(st.integers(0, 3)) == 0:  # truncated anywhere
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    return ctype, body


@pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionHeader")
async def test_malformed_multipart_never_5xx_or_hangs(client: TestClient, settings: Settings) -> None:
    await login(client)
    examples: list[tuple[str, bytes]] = []

    @hsettings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(multipart())
    def collect(example: tuple[str, bytes]) -> None:
        examples.append(example)

    collect()
    statuses: dict[int, int] = {}
    stored = 0
    for ctype, body in examples:
        try:
            async with asyncio.timeout(20):  # an answer, not a hang
                r = await client.post("/attach/upload", data=body, headers={"Content-Type": ctype})
                await r.read()
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError):
            # The server may cut off a request it refuses mid-body (a huge header line);
            # that is an answer too. Anything else (a timeout) fails the test.
            statuses[0] = statuses.get(0, 0) + 1
            continue
        statuses[r.status] = statuses.get(r.status, 0) + 1
        assert r.status < 500, (r.status, ctype, body[:200], await r.text())
        if r.status == 200 and (await r.json())["code"] == 0:
            stored += 1
    # Only accepted uploads left files behind (an image and its thumbnail each).
    assert len(stored_files(settings)) <= 2 * stored
    assert len(examples) >= 100
    status, ok = await upload(client, PNG, "ok.png")
    assert status == 200 and ok["code"] == 0, ok
    print("multipart fuzz statuses:", dict(sorted(statuses.items())))
