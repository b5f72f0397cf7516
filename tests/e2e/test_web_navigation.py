"""Issue #18 bugs found by using the web client: the back arrow of a page opened as the
tab's first page (a link, a notification, a reload) stays in the app."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web_client import add_friend, new_person, register_and_login

pytestmark = pytest.mark.slow


def test_back_arrow_on_first_page_goes_to_the_app_not_out(server: str, browser: Any) -> None:
    errors: list[str] = []
    erin = new_person(browser, server, "Erin", errors)
    finn = new_person(browser, server, "Finn", errors)
    try:
        register_and_login(erin)
        register_and_login(finn)
        group_id = 1  # any group page: it shows an error toast for a group Erin is not in
        for path, back_to in (
            (f"/chat/p{erin.id}_{erin.id + 1000}", "/chats"),
            ("/chat/search", "/chats"),
            (f"/groups/{group_id}", "/groups"),
        ):
            page = erin.context.new_page()  # a new tab: its history holds this one page
            page.goto(path)
            page.locator(".van-nav-bar__left").first.click()
            page.wait_for_url(f"**{back_to}", timeout=5000)
            page.close()

        # Inside the app the arrow still goes back to where the user came from.
        add_friend(erin, finn)  # ends on /contacts
        page = erin.page
        page.locator(f'[data-testid="friend-item"][data-user="{finn.id}"]').click()
        page.get_by_test_id("messages").wait_for()
        page.locator(".van-nav-bar__left").first.click()
        page.wait_for_url("**/contacts", timeout=5000)
    finally:
        erin.context.close()
        finn.context.close()
    assert not errors, errors
