"""Issue #18 item 7 in a real Chromium: search shows the text around the match with the
match marked (a long message whose match is near its end), finds English words by
prefix ("mee" → "Meeting"), and lists the user's own friends and groups that match,
each opening its chat. Screenshot: search-contacts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import logged_in
from tests.e2e.test_group_admin import create_group
from tests.e2e.test_web_client import (
    conv_p,
    field,
    open_chat,
    send_text,
    shot,
    wait_online,
)

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}

LONG = (
    "Before anything else: the quarterly numbers are in, marketing wants the new banner by Friday, "
    "the office plants need water and the printer on the second floor is broken again. "
    "Also the Meeting with the design team moves to Thursday at ten."
)


def search(page: Any, q: str) -> None:
    box = field(page, "search-input")
    box.fill(q)
    box.press("Enter")


@pytest.mark.parametrize("viewport", [None, DESKTOP], ids=["phone", "desktop"])
def test_snippet_prefix_friends_and_groups(server: str, browser: Any, viewport: dict[str, int] | None) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Meg", "Meera"], errors, viewport=viewport, befriend=True) as (meg, ted):
        gid = create_group(meg, "Meetup crew")
        conv = conv_p(meg, ted)
        open_chat(meg.page, conv)
        send_text(meg.page, LONG)

        page = meg.page
        page.goto("/chat/search")
        wait_online(page)
        search(page, "mee")
        hit = page.get_by_test_id("search-hit").first
        hit.wait_for()
        # The snippet starts near the match (the message's start is cut), match marked.
        text = hit.get_by_test_id("search-snippet").inner_text()
        assert text.startswith("…") and "Meeting with the design team" in text and "Before anything" not in text
        assert hit.locator("mark").all_inner_texts() == ["Mee"]
        # Friends and groups that match come first, each opening its chat.
        user = page.locator(f'[data-testid="search-user"][data-user="{ted.id}"]')
        assert user.locator("mark").inner_text() == "Mee"
        group = page.locator(f'[data-testid="search-group"][data-group="{gid}"]')
        assert group.locator("mark").inner_text() == "Mee"
        shot(page, "search-contacts")
        user.click()
        page.wait_for_url(f"**/chat/{conv}")
        page.go_back()
        page.wait_for_url("**/chat/search")
        page.locator(f'[data-testid="search-group"][data-group="{gid}"]').click()
        page.wait_for_url(f"**/chat/g{gid}")

        # Nothing for words nobody wrote; a stranger's name is not searched.
        page.goto("/chat/search")
        search(page, "meetingsx")
        page.get_by_test_id("search-empty").wait_for()
    assert not errors, errors
