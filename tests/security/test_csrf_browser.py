"""The same-site CSRF of issue #16 in a real Chromium: a page served on another port of
127.0.0.1 (same-site for the browser, so the ``SameSite=Lax`` session cookie goes
along) auto-submits a form to ``/user/update``. It must be refused; a same-origin
``fetch`` like the web client's must still work."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow


def post(url: str, data: dict[str, str], token: str = "") -> dict[str, Any]:
    body = urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


@pytest.fixture
def imhub(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", IMHUB_LOG_LEVEL="warning")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def attacker_page(imhub: ServerProcess) -> Iterator[str]:
    """A page on another port of the same host that posts a form to imhub on load."""
    html = f"""<!doctype html><body>
<form id="f" method="POST" action="{imhub.url}/user/update">
  <input name="nickname" value="pwned"></form>
<script>document.getElementById('f').submit()</script></body>""".encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_form_from_another_port_cannot_change_the_profile(imhub: ServerProcess, attacker_page: str,
                                                          browser: Any) -> None:  # noqa: F811
    assert post(imhub.url + "/user/register", {"mobile": "13712345678", "passwd": "secret12",
                                               "nickname": "victim"})["code"] == 0
    token = post(imhub.url + "/user/login", {"mobile": "13712345678", "passwd": "secret12"})["data"]["token"]
    context = browser.new_context()
    try:
        # The victim is logged in to imhub in this browser: the session cookie, as the login sets it.
        context.add_cookies([{"name": "imhub_token", "value": token, "url": imhub.url,
                              "httpOnly": True, "sameSite": "Lax"}])
        page = context.new_page()
        with page.expect_navigation(url=f"{imhub.url}/user/update") as nav:
            page.goto(attacker_page)
        response = nav.value
        assert response is not None and response.status == 403, response and response.text()
        me = post(imhub.url + "/user/me", {}, token)
        assert me["data"]["nickname"] == "victim"

        # The web client's way (a same-origin fetch with the cookie) still works.
        page.goto(imhub.url + "/healthz")
        result = page.evaluate(
            """async () => {
                const r = await fetch('/user/update', {method: 'POST', credentials: 'same-origin',
                    body: new URLSearchParams({nickname: 'renamed'})});
                return await r.json();
            }"""
        )
        assert result["code"] == 0, result
        assert post(imhub.url + "/user/me", {}, token)["data"]["nickname"] == "renamed"
    finally:
        context.close()
