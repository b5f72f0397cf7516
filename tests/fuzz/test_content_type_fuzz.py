"""Malformed and unexpected content types on every HTTP route (issue #16 item 9): a
``multipart/form-data`` without a boundary was a 500. Every route answers such a body
with a 4xx and the JSON envelope naming the problem, logged in or not."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.chatkit import make_user

BODIES: list[tuple[str, bytes]] = [
    ("multipart/form-data", b"--x\r\n\r\n"),
    ("multipart/form-data; boundary=", b"--\r\n"),
    ('multipart/form-data; boundary="unterminated', b"--x\r\n"),
    ("multipart/form-data; boundary=abc", b"not multipart at all"),
    ("multipart/form-data; boundary=abc", b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--\r\n"),
    ("multipart/mixed; boundary=abc", b"--abc--\r\n"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"a=%FF%FE"),
    ("application/x-www-form-urlencoded", b"\xff\xfe=\xff&&=&%zz"),
    ("application/json; charset=utf-16", b"\xff\xfe{\x00"),
    ("application/json", b"["),
    ("application/json", b'{"userid": {"$gt": 0}}'),
    ("text/plain", b"hello"),
    (";;;", b"x"),
    ("application/", b"x"),
]


def routes(client: TestClient) -> list[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or route.method != "POST" or "prefix" in info:  # the API is POST; GETs are pages
            continue
        found.add((route.method, re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(found)


@pytest.mark.parametrize("logged_in", [True, False], ids=["logged-in", "anonymous"])
async def test_malformed_content_types_never_500(client: TestClient, logged_in: bool) -> None:
    user = await make_user(client)
    headers = user.auth if logged_in else {}
    if not logged_in:
        client.session.cookie_jar.clear()
    problems = []
    table = routes(client)
    assert len(table) > 25
    for method, path in table:
        for ctype, body in BODIES:
            r = await client.request(method, path, data=body, headers={**headers, "Content-Type": ctype})
            text = await r.text()
            if r.status >= 500 or not text.startswith("{"):
                problems.append(f"{method} {path} [{ctype}] -> {r.status} {text[:80]}")
    assert not problems, "\n".join(problems)


async def test_multipart_without_boundary_says_so(client: TestClient) -> None:
    user = await make_user(client)
    r = await client.post("/user/update", data=b"nickname=x",
                          headers={**user.auth, "Content-Type": "multipart/form-data"})
    assert r.status == 400
    assert await r.json() == {"code": -1, "msg": "multipart/form-data needs a boundary parameter"}
