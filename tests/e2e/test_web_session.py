"""The SPA's session token stays in the HttpOnly cookie (docs/security.md): it is not
kept in localStorage and not put in the WebSocket URL, where proxies' logs and console
errors would show it; the socket is authenticated by the cookie. A session saved by an
older client (token in localStorage) is rewritten without it. The seed's ``?token=``
still opens a socket for clients without the cookie."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_web_client import new_person, register_and_login, wait_online

pytestmark = pytest.mark.slow

OPEN_SOCKET_JS = """([url, ms]) => new Promise((resolve) => {
  const ws = new WebSocket(url)
  const done = (r) => { clearTimeout(timer); try { ws.close() } catch (e) {} resolve(r) }
  const timer = setTimeout(() => done('timeout'), ms)
  ws.onopen = () => done('open')
  ws.onerror = () => done('refused')
})"""


def storage_dump(page: Any) -> str:
    return str(page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    ))


def session_cookie(context: Any) -> str:
    values = [c["value"] for c in context.cookies() if c["name"] == "imhub_token"]
    assert len(values) == 1 and values[0], context.cookies()
    return str(values[0])


def test_token_not_in_storage_or_socket_url(server: str, browser: Any) -> None:
    errors: list[str] = []
    dana = new_person(browser, server, "Dana", errors)
    sockets: list[str] = []
    dana.page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        register_and_login(dana)
        token = session_cookie(dana.context)
        assert sockets and all("/chat?" in u for u in sockets), sockets
        assert not [u for u in sockets if "token" in u or token in u], sockets
        assert token not in storage_dump(dana.page)

        # A session saved by the old client (token in localStorage): the reload drops
        # the token from storage and the socket still opens, by the cookie.
        old = {"id": dana.id, "token": token, "user": {"id": dana.id, "nickname": "Dana"}}
        dana.page.evaluate("s => localStorage.setItem('imhub.session', s)", json.dumps(old))
        sockets.clear()
        dana.page.reload()
        wait_online(dana.page)
        assert sockets and not [u for u in sockets if "token" in u or token in u], sockets
        assert token not in storage_dump(dana.page)
        saved = json.loads(dana.page.evaluate("localStorage.getItem('imhub.session')"))
        assert saved["id"] == dana.id and "token" not in saved

        # Without the cookie, only the seed's ?token= opens a socket.
        stranger = browser.new_context(base_url=server)
        try:
            page = stranger.new_page()
            page.goto("/user/login.shtml")
            assert page.evaluate(OPEN_SOCKET_JS, [f"/chat?id={dana.id}", 5000]) == "refused"
            assert page.evaluate(OPEN_SOCKET_JS, [f"/chat?id={dana.id}&token={token}", 5000]) == "open"
        finally:
            stranger.close()
    finally:
        dana.context.close()
    assert not errors, errors
