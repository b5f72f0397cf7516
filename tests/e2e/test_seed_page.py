"""The seed client's behaviour in a real browser (issue #15).

tests/e2e/seedpage/ holds pages that do what ../shared/seed/CLIENT.md says the seed's own
pages do (register with an avatar uploaded before the account exists, login, a chat page
whose every frame with ``}`` becomes a list entry, a ``/user/find`` and a cleared input
box). They are served from the imhub server's own origin (Playwright answers their
URLs), so cookies, the Origin check and the WebSocket URL are the browser's own. The
other side is a page speaking the modern protocol (``v=2``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_unavailable
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.integration.seedclient import seed_mobile
from tests.serverproc import ServerProcess

PAGES = Path(__file__).parent / "seedpage"
TYPES = {".html": "text/html; charset=utf-8", ".js": "application/javascript; charset=utf-8"}
OTHERS = "document.querySelectorAll('#list .msg.other')"


@pytest.fixture(scope="module")
def imhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("seed-page"),
        IMHUB_FRIEND_POLICY="open", IMHUB_GROUP_JOIN_POLICY="open", IMHUB_LOG_LEVEL="warning",
    )
    proc.start()
    try:
        yield proc.url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium as tests/e2e/conftest.py starts it, but without the Local Network
    Access checks: the pages here are answered by Playwright, which Chromium does not
    count as a loopback origin, and would refuse their WebSocket to 127.0.0.1."""
    if not Path(CHROMIUM).is_file():
        service_unavailable("Chromium", f"{CHROMIUM} not found (make test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_unavailable("Playwright", repr(exc))
    args = [*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        except Exception as exc:
            service_unavailable("Chromium", f"could not launch {CHROMIUM}: {exc}")
        try:
            yield b
        finally:
            b.close()


def context(browser: Any, base: str) -> Any:
    """A browser profile in which ``<base>/seedpage/<file>`` are the seed pages."""
    ctx = browser.new_context()

    def serve(route: Any) -> None:
        name = route.request.url.split("/seedpage/", 1)[1].split("?", 1)[0]
        path = PAGES / name
        if "/" in name or not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=path.read_bytes(), headers={"Content-Type": TYPES[path.suffix]})

    ctx.route(f"{base}/seedpage/**", serve)
    return ctx


def png(tmp_path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 140, 90)).save(buf, "PNG")
    path = tmp_path / "avatar.png"
    path.write_bytes(buf.getvalue())
    return path


def others(page: Any) -> list[list[str]]:
    """The bubbles of the open chat not sent by this page: [media, text]."""
    return page.eval_on_selector_all("#list .msg.other", "els => els.map(e => [e.dataset.media, e.textContent])")


def assert_clean(page: Any) -> None:
    state = page.evaluate("({failed: seed.failed, logged: seed.logged, cleared: seed.cleared, entries: seed.entries})")
    assert state["failed"] == [], state["failed"]
    assert state["logged"] == []
    received = [e["msg"] for e in state["entries"] if not e.get("local")]
    junk = [m for m in received if m.get("cmd") not in (10, 11) or m.get("media") not in (1, 3, 4) or "userid" not in m]
    assert junk == [], junk
    assert state["cleared"] == len(received)


def test_seed_pages_in_a_browser(imhub: str, browser: Any, tmp_path: Path) -> None:
    base = imhub
    errors: list[str] = []
    ctx = context(browser, base)
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))

    # --- register with an avatar (no account, no cookie yet), then login --------------
    page.goto(f"{base}/seedpage/register.html")
    mobile = seed_mobile()
    page.fill("#mobile", mobile)
    page.fill("#passwd", "secret12")
    page.fill("#nickname", "种子")
    page.set_input_files("#avatarfile", str(png(tmp_path)))
    page.wait_for_function("seed.avatarDone === true")
    assert page.evaluate("seed.failed") == []
    avatar = page.evaluate("seed.avatar")
    page.click("#submit")
    page.wait_for_url("**/seedpage/login.html")
    page.fill("#mobile", mobile)
    page.fill("#passwd", "secret12")
    page.click("#submit")
    page.wait_for_url("**/seedpage/chat.html?**")
    page.wait_for_function("seed.loaded && seed.connected")
    me = page.evaluate("me")
    assert page.evaluate("post('/user/find', {id: me}).then(j => j.data.avatar)") == avatar

    # --- the other side (modern), added as a friend through the prompt ---------------
    bob = context(browser, base).new_page()
    bob.goto(f"{base}/seedpage/modern.html")
    bob_id = bob.evaluate("mobile => start(mobile)", seed_mobile())
    page.once("dialog", lambda d: d.accept(str(bob_id)))
    page.click("#addfriend")
    page.wait_for_function(f"seed.friends.includes({bob_id})")
    page.evaluate(f"openChat(10, {bob_id})")
    page.fill("#input", "你好 bob")
    page.click("#send")
    bob.wait_for_function("m.frames.some(f => f.cmd === 10 && f.content === '你好 bob')")

    # --- a draft survives the friend reconnecting, typing and reading -----------------
    conv = f"p{min(me, bob_id)}_{max(me, bob_id)}"
    page.fill("#input", "half-typed")
    bob.evaluate("reconnect()")
    bob.evaluate(f"raw({{cmd: 24, conv: '{conv}'}})")
    bob.evaluate(f"raw({{cmd: 23, conv: '{conv}', seq: 1}})")
    page.wait_for_timeout(700)
    assert page.input_value("#input") == "half-typed"
    assert_clean(page)

    # --- the friend's text and a link card: both drawn, as text -----------------------
    bob.evaluate(f"say(10, {me}, 1, {{content: 'hi seed'}})")
    bob.evaluate(f"say(10, {me}, 7, {{url: 'https://example.com/x'}})")
    page.wait_for_function(f"{OTHERS}.length >= 2")
    bubbles = others(page)
    assert bubbles[0] == ["1", "hi seed"] and bubbles[1][0] == "1" and "https://example.com/x" in bubbles[1][1]

    # --- a group, joined through the prompt ---------------------------------------------
    gid = bob.evaluate("makeGroup('browsers')")
    page.once("dialog", lambda d: d.accept(str(gid)))
    page.click("#joingroup")
    page.wait_for_function(f"seed.groups.includes({gid})")
    page.evaluate(f"openChat(11, {gid})")
    bob.evaluate(f"say(11, {gid}, 1, {{content: 'hello group'}})")
    page.wait_for_function(f"{OTHERS}.length >= 1")
    assert others(page) == [["1", "hello group"]]
    page.wait_for_timeout(300)
    assert_clean(page)

    # --- offline: the tab is closed, messages come, the same URL is opened again ------
    url = page.url
    page.close()
    # Offline means the server has seen the socket close: until then it writes bob's
    # messages to it (a seed page sends no acks) and counts them delivered, so the
    # reopened page would not be sent them. Bob hears that as the friend's presence.
    bob.wait_for_function(f"m.frames.some(f => f.cmd === 35 && f.userid === {me} && f.online === false)")
    for cmd, dst, text in [(10, me, "away 1"), (11, gid, "group away"), (10, me, "away 2")]:
        bob.evaluate(f"say({cmd}, {dst}, 1, {{content: '{text}'}})")
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("seed.loaded && seed.connected")
    page.evaluate(f"openChat(10, {bob_id})")
    page.wait_for_function(f"{OTHERS}.length >= 2")
    page.evaluate(f"openChat(11, {gid})")
    page.wait_for_function(f"{OTHERS}.length >= 1")
    page.wait_for_timeout(500)
    assert others(page) == [["1", "group away"]]
    page.evaluate(f"openChat(10, {bob_id})")
    assert others(page) == [["1", "away 1"], ["1", "away 2"]]
    assert_clean(page)
    assert errors == []
