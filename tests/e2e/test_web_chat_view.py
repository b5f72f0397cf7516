"""Issue #18, the chat view: what real use found there. Each test drives two (or three)
people in Chromium against a real ``imhub serve``, at phone (390x844) and desktop
(1280x800) widths where the layout matters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_web_client import (
    Person,
    add_friend,
    conv_p,
    new_person,
    open_chat,
    register_and_login,
    sample_png,
    send_text,
)

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]


@pytest.fixture
def pair(server: str, browser: Any) -> Iterator[tuple[Person, Person, list[str]]]:
    """Two registered friends; the test's errors list is checked at the end."""
    errors: list[str] = []
    a = new_person(browser, server, "Jack", errors)
    b = new_person(browser, server, "Kate", errors)
    try:
        register_and_login(a)
        register_and_login(b)
        add_friend(a, b)
        yield a, b, errors
    finally:
        a.context.close()
        b.context.close()
    assert not errors, errors


# How far the message list is scrolled above its bottom, in px (a JS expression).
GAP = "((el) => el.scrollHeight - el.scrollTop - el.clientHeight)(document.querySelector('[data-testid=\"messages\"]'))"


def gap(page: Any) -> float:
    """How far the message list is scrolled above its bottom, in px."""
    return float(page.evaluate(GAP))


def send_image(page: Any, width: int = 1200, height: int = 900) -> None:
    page.get_by_test_id("more-toggle").click()
    page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png(width, height)}
    )
    page.locator('[data-testid="message"][data-media="4"][data-state="sent"]').last.wait_for()


# ---- bug 2: images must not stop the chat following new messages ----------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_chat_follows_new_messages_while_images_load(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    kate.page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    for i in range(14):
        send_text(jack.page, f"filler {i}")
    # Kate's images arrive only when the test lets them: the bubbles are laid out
    # (and the list scrolled) long before the pictures are there.
    held: list[Any] = []
    kate.page.route("**/mnt/**", lambda route: held.append(route))
    open_chat(kate.page, conv)
    kate.page.locator('[data-testid="msg-text"]', has_text="filler 13").wait_for()
    kate.page.wait_for_function(f"() => {GAP} < 4")

    send_image(jack.page, 1200, 900)
    send_image(jack.page, 600, 1200)
    send_text(jack.page, "look at these")
    kate.page.locator('[data-testid="msg-text"]', has_text="look at these").wait_for()
    imgs = kate.page.get_by_test_id("msg-image")
    assert imgs.count() == 2
    # The boxes are reserved from the sizes sent with the messages (180 px wide at most,
    # 220 px high at most), before any pixel arrived.
    boxes = [imgs.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and abs(boxes[0]["width"] - 180) < 1.5 and abs(boxes[0]["height"] - 135) < 1.5, boxes
    assert boxes[1] and abs(boxes[1]["width"] - 110) < 1.5 and abs(boxes[1]["height"] - 220) < 1.5, boxes
    kate.page.wait_for_timeout(200)
    assert gap(kate.page) < 4

    for route in held:
        route.continue_()
    kate.page.unroute("**/mnt/**")
    kate.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"msg-image\"]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    kate.page.wait_for_timeout(300)
    assert gap(kate.page) < 4, "the newest message went off-screen when the images loaded"

    # Scrolled up, new messages do not move the view; a button says they are there.
    kate.page.evaluate("() => { document.querySelector('[data-testid=\"messages\"]').scrollTop = 0 }")
    kate.page.wait_for_timeout(200)
    assert kate.page.get_by_test_id("new-messages-button").count() == 0
    send_text(jack.page, "are you there?")
    send_text(jack.page, "hello?")
    kate.page.locator('[data-testid="msg-text"]', has_text="hello?").wait_for(state="attached")
    button = kate.page.get_by_test_id("new-messages-button")
    button.wait_for()
    assert "2" in button.inner_text()
    assert gap(kate.page) > 200
    button.click()
    kate.page.wait_for_function(f"() => {GAP} < 4")
    button.wait_for(state="detached")
