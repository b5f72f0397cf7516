"""Issue #18 item 10, the desktop layout (≥ 1024 px): the conversation list left and the
chat right, bars no wider than their pane; a right click opens a menu at the pointer;
Esc closes sheets, dialogs and the image viewer; Enter sends and Shift+Enter breaks the
line; images pasted into or dropped on the composer are sent. Phones keep one page."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_web_client import open_chat, sample_png, send_text, shot
from tests.e2e.tour import CONTENT, DESKTOP, PHONE, World, build_world

pytestmark = pytest.mark.slow

BAR_WIDTHS = """() => [...document.querySelectorAll('.van-nav-bar, .van-tabbar')]
  .filter((el) => el.offsetParent !== null).map((el) => Math.round(el.getBoundingClientRect().width))"""

# A File of `b64` PNG bytes in a DataTransfer, given to a synthetic paste or drop event.
DISPATCH_IMAGE = """([selector, kind, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
  const dt = new DataTransfer()
  dt.items.add(new File([bytes], 'shot.png', { type: 'image/png' }))
  const el = document.querySelector(selector)
  if (kind === 'paste') {
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))
  } else {
    el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }))
    el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
  }
}"""


@pytest.fixture(scope="module")
def world(server: str, browser: Any) -> Iterator[tuple[World, list[str]]]:
    errors: list[str] = []
    w = build_world(browser, server, "en", errors, viewport=DESKTOP)
    try:
        yield w, errors
    finally:
        w.close()
    assert not errors, errors


def test_two_panes_list_left_chat_right(world: tuple[World, list[str]]) -> None:
    w, _ = world
    page = w.owner.page
    page.set_viewport_size(DESKTOP)
    page.goto("/chats")
    page.get_by_test_id("desk-empty").wait_for()
    page.locator(f'[data-testid="conv-item"][data-conv="{w.conv}"]').click()
    page.wait_for_url(f"**/chat/{w.conv}")
    page.get_by_test_id("msg-text").first.wait_for()
    # list and chat side by side
    item = page.locator(f'[data-testid="conv-item"][data-conv="{w.conv}"]')
    assert item.is_visible()
    assert item.get_attribute("aria-current") == "page"
    list_box = page.get_by_test_id("desk-side").bounding_box()
    chat_box = page.get_by_test_id("messages").bounding_box()
    assert list_box and chat_box and chat_box["x"] >= list_box["x"] + list_box["width"] - 1
    assert page.get_by_test_id("chat-title").inner_text() == CONTENT["en"]["friend"]
    widths = page.evaluate(BAR_WIDTHS)
    assert widths and max(widths) < DESKTOP["width"] - 100, widths
    # another conversation from the list replaces the chat on the right
    page.locator(f'[data-testid="conv-item"][data-conv="g{w.gid}"]').click()
    page.wait_for_url(f"**/chat/g{w.gid}")
    page.get_by_test_id("chat-title").get_by_text(CONTENT["en"]["group"]).wait_for()
    page.get_by_test_id("event-line").first.wait_for()
    shot(page, "desktop-layout")
    # other tabs open on the right too, the list stays
    page.get_by_test_id("tab-contacts").click()
    page.wait_for_url("**/contacts")
    page.get_by_test_id("friend-item").first.wait_for()
    assert page.get_by_test_id("conv-item").first.is_visible()

    # A phone keeps one page at a time.
    page.set_viewport_size(PHONE)
    open_chat(page, w.conv)
    assert page.get_by_test_id("desk").count() == 0
    assert page.get_by_test_id("conv-item").count() == 0
    page.set_viewport_size(DESKTOP)


def test_right_click_menu_at_pointer_and_escape(world: tuple[World, list[str]]) -> None:
    w, _ = world
    page = w.owner.page
    page.set_viewport_size(DESKTOP)
    open_chat(page, w.conv)
    send_text(page, "right click me")  # mine and fresh: the menu offers Recall
    bubble = page.locator('[data-testid="message"]', has_text="right click me").get_by_test_id("bubble")
    box = bubble.bounding_box()
    assert box
    x, y = box["x"] + 10, box["y"] + 8
    page.mouse.click(x, y, button="right")
    menu = page.get_by_test_id("context-menu")
    menu.wait_for()
    mbox = menu.bounding_box()
    # a corner of the menu at the pointer (it opens leftwards near the window's right edge)
    assert mbox, mbox
    assert min(abs(mbox["x"] - x), abs(mbox["x"] + mbox["width"] - x)) <= 2, (mbox, x, y)
    assert min(abs(mbox["y"] - y), abs(mbox["y"] + mbox["height"] - y)) <= 2, (mbox, x, y)
    assert not page.locator(".van-action-sheet").first.is_visible()
    assert page.evaluate("document.activeElement?.getAttribute('role')") == "menuitem"
    page.keyboard.press("Escape")
    menu.wait_for(state="detached")
    # the menu's action works (copy needs a permission; recall is one of mine)
    page.mouse.click(x, y, button="right")
    page.locator('[data-testid="context-menu"] [data-action="recall"]').click()
    page.get_by_test_id("msg-recalled").first.wait_for()

    # Esc closes a sheet, a dialog, the image viewer.
    page.get_by_test_id("more-toggle").click()
    page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png(300, 200)}
    )
    page.get_by_test_id("msg-image").last.click()
    page.locator(".van-image-preview").wait_for()
    page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    page.locator(".van-image-preview").wait_for(state="hidden")

    page.goto("/me")
    page.get_by_test_id("lang-switch").click()
    sheet = page.locator(".van-action-sheet", has_text="中文")
    sheet.wait_for()
    page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    sheet.wait_for(state="hidden")

    page.goto(f"/groups/{w.gid}")
    page.get_by_test_id("group-leave").click()
    page.locator(".van-dialog").wait_for()
    page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    page.locator(".van-dialog").wait_for(state="hidden")
    assert page.url.endswith(f"/groups/{w.gid}")  # cancelled, not left


def test_enter_sends_shift_enter_breaks_paste_and_drop_send_images(world: tuple[World, list[str]]) -> None:
    w, _ = world
    page = w.owner.page
    page.set_viewport_size(DESKTOP)
    open_chat(page, w.conv)
    box = page.get_by_test_id("composer-input")
    box.click()
    box.type("first line")
    page.keyboard.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    page.keyboard.press("Enter")
    page.locator('[data-testid="message"][data-state="sent"]', has_text="second line").wait_for()
    assert box.input_value() == ""
    sent = page.get_by_test_id("msg-text").all_inner_texts()
    assert "first line\nsecond line" in [s.strip() for s in sent], sent

    b64 = base64.b64encode(sample_png(240, 160)).decode()
    before = page.get_by_test_id("msg-image").count()
    page.evaluate(DISPATCH_IMAGE, ['[data-testid="composer-input"]', "paste", b64])
    page.locator('[data-testid="message"][data-media="4"][data-state="sent"]').nth(before).wait_for()
    page.evaluate(DISPATCH_IMAGE, ['[data-testid="composer"]', "drop", b64])
    page.locator('[data-testid="message"][data-media="4"][data-state="sent"]').nth(before + 1).wait_for()
    # the peer gets both
    open_chat(w.friend.page, w.conv)
    w.friend.page.locator('[data-testid="message"][data-media="4"]').nth(before + 1).wait_for()
