"""The web client in a real Chromium against a real ``imhub serve``: two users register,
befriend and exchange text, an image and a voice message; a third joins a group and all
three chat; a user who was away comes back to every missed message in order; markup in
a message stays text. Screenshots of the main screens go to test-artifacts/e2e/ (and to
docs/screenshots/ with IMHUB_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, ROOT

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 390, "height": 780}
SHOTS = ROOT / "docs" / "screenshots"
TIMEOUT = 15_000


@dataclass
class Person:
    name: str
    mobile: str
    passwd: str
    context: Any
    page: Any
    id: int = 0


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("IMHUB_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / f"{name}.png")


def sample_png(width: int = 1200, height: int = 900) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    for y in range(0, height, 6):
        draw.rectangle([0, y, width, y + 6], fill=(30 + y * 180 // height, 120, 220 - y * 150 // height))
    draw.ellipse([width // 3, height // 4, width * 2 // 3, height * 3 // 4], fill=(255, 214, 10))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def new_person(
    browser: Any, base: str, name: str, errors: list[str], locale: str = "en-US", viewport: dict[str, int] | None = None
) -> Person:
    context = browser.new_context(
        base_url=base, viewport=viewport or VIEWPORT, device_scale_factor=2, locale=locale, permissions=["microphone"]
    )
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    watch(page, errors)
    mobile = "139" + uuid.uuid4().int.__str__()[:8]
    return Person(name=name, mobile=mobile, passwd="secret-" + name, context=context, page=page)


def watch(page: Any, errors: list[str]) -> None:
    page.on("dialog", lambda d: (errors.append(f"unexpected dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    def console(m: Any) -> None:
        if m.type == "error" and ("Content Security" in m.text or "Refused" in m.text):
            errors.append(f"console: {m.text}")

    page.on("console", console)


def field(page: Any, testid: str) -> Any:
    return page.locator(f'[data-testid="{testid}"] input')


def register_and_login(p: Person, screenshots: bool = False) -> None:
    page = p.page
    page.goto("/user/register.shtml")
    field(page, "reg-mobile").fill(p.mobile)
    field(page, "reg-passwd").fill(p.passwd)
    field(page, "reg-nickname").fill(p.name)
    if screenshots:
        shot(page, "register")
    page.get_by_test_id("reg-submit").click()
    page.wait_for_url("**/login?mobile=*")
    assert field(page, "login-mobile").input_value() == p.mobile
    field(page, "login-passwd").fill(p.passwd)
    if screenshots:
        page.locator(".van-toast").last.wait_for(state="hidden")
        shot(page, "login")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/chats")
    session = json.loads(page.evaluate("localStorage.getItem('imhub.session')"))
    p.id = int(session["id"])
    wait_online(page)


def wait_online(page: Any) -> None:
    page.wait_for_selector('[data-testid="connection-state"][data-state="open"]', state="attached")


def add_friend(p: Person, other: Person) -> None:
    page = p.page
    page.get_by_test_id("tab-contacts").click()
    page.wait_for_url("**/contacts")
    field(page, "add-friend-input").fill(other.mobile)
    page.get_by_test_id("add-friend-submit").click()
    page.locator(f'[data-testid="friend-item"][data-user="{other.id}"]').wait_for()


def conv_p(a: Person, b: Person) -> str:
    lo, hi = sorted((a.id, b.id))
    return f"p{lo}_{hi}"


def send_text(page: Any, text: str) -> None:
    box = page.get_by_test_id("composer-input")
    box.fill(text)
    page.get_by_test_id("send").click()
    last_mine_sent(page, text)


def last_mine_sent(page: Any, text: str) -> None:
    page.locator('[data-testid="message"][data-state="sent"]', has_text=text).last.wait_for()


def texts(page: Any) -> list[str]:
    return [t.strip() for t in page.get_by_test_id("msg-text").all_inner_texts()]


def open_chat(page: Any, conv: str) -> None:
    page.goto(f"/chat/{conv}")
    page.get_by_test_id("messages").wait_for()
    wait_online(page)


def test_two_users_group_and_offline_sync(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "Alice", errors)
    bob = new_person(browser, server, "Bob", errors)
    carol = new_person(browser, server, "Carol", errors)
    try:
        _scenario(alice, bob, carol, errors)
    finally:
        for p in (alice, bob, carol):
            p.context.close()
    assert not errors, errors


def _scenario(alice: Person, bob: Person, carol: Person, errors: list[str]) -> None:
    # --- register, log in, befriend --------------------------------------------------
    register_and_login(alice, screenshots=True)
    register_and_login(bob)
    add_friend(alice, bob)
    add_friend(bob, alice)  # already friends: the server says so, the list still shows Alice
    bob.page.locator(f'[data-testid="friend-item"][data-user="{alice.id}"]').wait_for()
    conv = conv_p(alice, bob)

    # --- text both ways ---------------------------------------------------------------
    open_chat(alice.page, conv)
    send_text(alice.page, "Hello Bob 👋")
    bob.page.get_by_test_id("tab-chats").click()
    item = bob.page.locator(f'[data-testid="conv-item"][data-conv="{conv}"]')
    item.wait_for()
    assert "Hello Bob" in item.inner_text()
    item.click()
    bob.page.locator('[data-testid="msg-text"]', has_text="Hello Bob").wait_for()
    send_text(bob.page, "Hi Alice! see https://example.com/docs")
    alice.page.locator('[data-testid="msg-text"]', has_text="Hi Alice").wait_for()
    link = alice.page.locator('[data-testid="msg-text"] a', has_text="https://example.com/docs")
    assert link.get_attribute("href") == "https://example.com/docs"
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"

    # --- markup stays text ------------------------------------------------------------
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    send_text(alice.page, evil)
    bob.page.locator('[data-testid="msg-text"]', has_text="<script>").wait_for()
    assert evil in texts(bob.page)
    assert bob.page.locator('[data-testid="messages"] script').count() == 0
    assert bob.page.locator('[data-testid="messages"] img[src="x"]').count() == 0

    # --- sticker ----------------------------------------------------------------------
    alice.page.get_by_test_id("emoji-toggle").click()
    alice.page.get_by_role("tab", name="Sticker").click()
    alice.page.locator('[data-testid="sticker-grid"] button').first.click()
    bob.page.get_by_test_id("msg-sticker").last.wait_for()

    # --- image: thumbnail in the bubble, original on tap ------------------------------
    alice.page.get_by_test_id("more-toggle").click()
    alice.page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png()}
    )
    img = bob.page.get_by_test_id("msg-image").last
    img.wait_for()
    bob.page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=TIMEOUT
    )
    thumb_src = img.get_attribute("src") or ""
    natural = bob.page.evaluate("el => [el.naturalWidth, el.naturalHeight]", img.element_handle())
    assert natural[0] < 1200, f"the bubble should show the thumbnail, got {natural}"
    img.click()
    preview = bob.page.locator(".van-image-preview img")
    preview.first.wait_for()
    bob.page.wait_for_function(
        "() => { const i = document.querySelector('.van-image-preview img');"
        " return i && i.complete && i.naturalWidth === 1200 }",
        timeout=TIMEOUT,
    )
    original_src = preview.first.get_attribute("src") or ""
    assert original_src != thumb_src
    bob.page.wait_for_timeout(400)  # let the preview finish fading in
    shot(bob.page, "image-preview")
    bob.page.keyboard.press("Escape")
    bob.page.locator(".van-image-preview__close-icon").click()
    bob.page.locator(".van-image-preview").wait_for(state="hidden")

    # --- voice: hold to record, upload, bubble with duration --------------------------
    alice.page.get_by_test_id("voice-toggle").click()
    hold = alice.page.get_by_test_id("voice-hold")
    box = hold.bounding_box()
    assert box
    alice.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    alice.page.mouse.down()
    alice.page.get_by_test_id("recording").wait_for()
    alice.page.wait_for_timeout(2300)
    alice.page.mouse.up()
    voice = bob.page.get_by_test_id("msg-voice").last
    voice.wait_for(timeout=TIMEOUT)
    seconds = int(voice.inner_text().strip().rstrip("″"))
    assert 1 <= seconds <= 4
    alice.page.get_by_test_id("voice-toggle").click()
    shot(bob.page, "chat")
    shot(alice.page, "chat-sender")

    # --- group: Carol registers, Alice creates it with an icon, Bob and Carol join -----
    register_and_login(carol)
    a = alice.page
    a.get_by_test_id("voice-toggle").wait_for()
    a.goto("/groups")
    a.get_by_test_id("create-group").click()
    field(a, "group-name").fill("Weekend hike")
    field(a, "group-memo").fill("Saturday 8:00, north gate")
    a.locator('[data-testid="group-icon"] input[type="file"]').set_input_files(
        {"name": "icon.png", "mimeType": "image/png", "buffer": sample_png(300, 300)}
    )
    a.locator('[data-testid="group-icon"] .van-uploader__preview').wait_for()
    a.locator(".van-toast--loading").wait_for(state="hidden")
    a.get_by_test_id("group-create-submit").click()
    a.wait_for_url("**/groups/*")
    gid = int(a.url.rstrip("/").rsplit("/", 1)[1])
    for p in (bob, carol):
        p.page.goto("/groups")
        p.page.get_by_test_id("join-group").click()
        field(p.page, "join-group-id").fill(str(gid))
        p.page.get_by_test_id("join-group-submit").click()
        p.page.wait_for_url(f"**/groups/{gid}")
    carol.page.locator('[data-testid="member"]').nth(2).wait_for()
    assert carol.page.locator('[data-testid="member"]').count() == 3
    carol.page.locator(".van-toast").last.wait_for(state="hidden")
    shot(carol.page, "group")
    carol.page.goto("/groups")
    carol.page.locator(f'[data-testid="group-item"][data-group="{gid}"]').wait_for()
    shot(carol.page, "groups")

    g = f"g{gid}"
    for p in (alice, bob, carol):
        open_chat(p.page, g)
    send_text(alice.page, "Who is coming on Saturday?")
    send_text(bob.page, "Me! 🙋")
    send_text(carol.page, "Count me in")
    for p in (alice, bob, carol):
        for t in ("Who is coming on Saturday?", "Me! 🙋", "Count me in"):
            p.page.locator('[data-testid="msg-text"]', has_text=t).wait_for()
        got = [t for t in texts(p.page) if t in ("Who is coming on Saturday?", "Me! 🙋", "Count me in")]
        assert got == ["Who is coming on Saturday?", "Me! 🙋", "Count me in"], (p.name, got)
    shot(carol.page, "group-chat")

    # --- Carol goes away; messages pile up; she comes back to all of them in order -----
    carol.page.close()
    missed = [f"missed #{i}" for i in range(1, 7)]
    for i, t in enumerate(missed):
        send_text((alice if i % 2 == 0 else bob).page, t)
    carol.page = carol.context.new_page()
    watch(carol.page, errors)
    carol.page.goto("/chats")
    wait_online(carol.page)
    item = carol.page.locator(f'[data-testid="conv-item"][data-conv="{g}"]')
    item.wait_for()
    carol.page.wait_for_function(
        "conv => { const el = document.querySelector(`[data-conv=\"${conv}\"]`);"
        " return el && el.innerText.includes('Bob: missed #6') }",
        arg=g,
    )
    shot(carol.page, "chats")
    item.click()
    carol.page.locator('[data-testid="msg-text"]', has_text="missed #6").wait_for()
    got = [t for t in texts(carol.page) if t.startswith("missed #")]
    assert got == missed
    seqs = [int(s) for s in carol.page.locator('[data-testid="message"]').evaluate_all(
        "els => els.map(e => e.dataset.seq).filter(Boolean)")]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

    # --- offline queue: Bob's network drops, he writes, it goes out when back ----------
    bob.context.set_offline(True)
    bob.page.wait_for_selector('[data-testid="connection-state"]:not([data-state="open"])', state="attached")
    bob.page.get_by_test_id("composer-input").fill("sent while offline")
    bob.page.get_by_test_id("send").click()
    bob.page.locator('[data-testid="message"][data-state="pending"]', has_text="sent while offline").wait_for()
    bob.context.set_offline(False)
    last_mine_sent(bob.page, "sent while offline")
    carol.page.locator('[data-testid="msg-text"]', has_text="sent while offline").wait_for()
    alice.page.locator('[data-testid="msg-text"]', has_text="sent while offline").wait_for()
    assert texts(alice.page).count("sent while offline") == 1

    # --- the other screens ------------------------------------------------------------
    alice.page.goto("/contacts")
    alice.page.locator('[data-testid="friend-item"]').first.wait_for()
    shot(alice.page, "contacts")
    alice.page.goto("/me")
    alice.page.get_by_test_id("me-name").wait_for()
    shot(alice.page, "me")
    assert alice.page.title().startswith("imhub") or alice.page.title().startswith("(")
