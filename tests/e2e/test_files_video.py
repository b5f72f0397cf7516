"""Files and video in the web client (issue #19 item 7), in a real Chromium against a
real ``imhub serve``, at a phone and a desktop width: Alice sends a PDF and a video from
the composer's "more" panel; Bob sees the file's name, size and type and downloads it
under its name, and the video inline with its poster and duration, and it plays.
An HTML file is refused with the server's reason. Screenshots: composer-more-*,
files-video-* (phone, desktop)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import logged_in
from tests.e2e.test_web_client import (
    TIMEOUT,
    Person,
    conv_p,
    open_chat,
    shot,
)
from tests.media.media_samples import PDF, colour_video

pytestmark = pytest.mark.slow

SERVER_ENV = {"IMHUB_MEDIA_FILE_KINDS": "pdf,zip"}
WIDTHS = {"phone": {"width": 390, "height": 780}, "desktop": {"width": 1280, "height": 800}}
FILE_NAME = "季度报告 Q3.pdf"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_send_a_file_and_a_video(server: str, browser: Any, width: str) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Alice", "Bob"], errors, viewport=WIDTHS[width], befriend=True) as (alice, bob):
        _scenario(alice, bob, width)
    assert not errors, errors


def _scenario(alice: Person, bob: Person, width: str) -> None:
    conv = conv_p(alice, bob)
    a, b = alice.page, bob.page
    open_chat(a, conv)
    open_chat(b, conv)

    # --- a type the server does not take: refused with a readable reason -------------
    a.get_by_test_id("more-toggle").click()
    a.get_by_test_id("pick-file").wait_for()
    shot(a, f"composer-more-{width}")
    a.get_by_test_id("file-input").set_input_files(
        {"name": "page.html", "mimeType": "text/html", "buffer": b"<!DOCTYPE html><html><script></script></html>"}
    )
    a.locator(".van-toast", has_text="This type of file cannot be sent").wait_for()
    assert a.locator('[data-testid="message"]').count() == 0

    # --- a file: name, size and type; downloaded under its own name -------------------
    a.get_by_test_id("pick-file").wait_for()  # the panel stayed open after the refusal
    a.get_by_test_id("file-input").set_input_files(
        {"name": FILE_NAME, "mimeType": "application/pdf", "buffer": PDF}
    )
    a.locator('[data-testid="message"][data-state="sent"][data-media="12"]').wait_for()
    item = b.get_by_test_id("msg-file").last
    item.wait_for()
    assert item.get_by_test_id("file-name").inner_text() == FILE_NAME
    assert item.get_by_test_id("file-meta").inner_text() == f"{len(PDF)} B · PDF"
    with b.expect_download() as download:
        item.get_by_test_id("file-download").click()
    assert download.value.suggested_filename == FILE_NAME
    assert open(download.value.path(), "rb").read() == PDF

    # --- a video: inline, with its poster and duration; it plays ----------------------
    a.get_by_test_id("more-toggle").click()
    # A phone's portrait clip: stored 320x240, shown turned clockwise (display matrix -90).
    clip = colour_video(seconds=2, size=(320, 240), rate=10, codec="libx264", rotation=-90, left=(20, 20, 220))
    a.get_by_test_id("video-input").set_input_files({"name": "clip.mp4", "mimeType": "video/mp4", "buffer": clip})
    a.locator('[data-testid="message"][data-state="sent"][data-media="8"]').wait_for()
    video = b.get_by_test_id("video-el").last
    video.wait_for()
    assert video.get_attribute("preload") == "none" and video.get_attribute("controls") is not None
    poster = video.get_attribute("poster") or ""
    assert poster.endswith("_t.jpg"), poster
    got = b.request.get(poster)
    assert got.status == 200 and got.headers["content-type"] == "image/jpeg"
    assert b.get_by_test_id("video-duration").last.inner_text() == "0:02"
    box = video.bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 240 / 320) < 0.05, box
    b.wait_for_function(
        "el => { const img = new Image(); img.src = el.poster; return img.decode().then(() => true) }",
        arg=video.element_handle(), timeout=TIMEOUT,
    )
    b.wait_for_timeout(500)
    shot(b, f"files-video-{width}")
    video.evaluate("el => { el.muted = true; return el.play() }")
    # Chromium turns it like the server turned the poster: upright, 240 wide.
    playing = "el => el.currentTime > 0 && el.videoWidth === 240 && el.videoHeight === 320"
    b.wait_for_function(playing, arg=video.element_handle(), timeout=TIMEOUT)
    top = video.evaluate(
        """el => { const c = document.createElement('canvas'); c.width = 240; c.height = 320;
                   const g = c.getContext('2d'); g.drawImage(el, 0, 0, 240, 320);
                   return Array.from(g.getImageData(120, 20, 1, 1).data.slice(0, 3)) }"""
    )
    assert top[2] > 150 and top[0] < 100, top  # the clip's left side (blue) is on top, as on the poster
    # The sender sees the same file bubble.
    assert a.get_by_test_id("msg-file").last.get_by_test_id("file-name").inner_text() == FILE_NAME
