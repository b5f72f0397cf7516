"""Issue #18 item 4, one language at a time: the web client follows the browser's
language (and the switch in the Me view, remembered); Vant's own texts, <html lang>,
dates and the server's refusals follow it, and no view shows a word of the other
language."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web_client import field, new_person, open_chat, register_and_login, shot
from tests.e2e.tour import DESKTOP, LOCALES, PHONE, build_world, dictionary, each_view, other_language, settle

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_view_speaks_one_language(server: str, browser: Any, lang: str) -> None:
    errors: list[str] = []
    w = build_world(browser, server, lang, errors)
    words = dictionary(lang)
    mixed: dict[str, list[str]] = {}
    try:
        page = w.owner.page

        def check(p: Any, view: str) -> None:
            assert p.evaluate("document.documentElement.lang") == {"en": "en", "zh": "zh-CN"}[lang]
            if view == "group-chat":
                # the top of the history says so (not 已经到底了, "reached the bottom")
                assert p.get_by_test_id("older").inner_text().strip() == words["noOlder"]
                lines = p.get_by_test_id("event-line").all_inner_texts()
                assert any(line.startswith(words["you"]) for line in lines), lines
                assert not any(line.startswith(words["you"] + " ") for line in lines if lang == "zh"), lines
            if view == "chat":
                shot(p, f"phone-{lang}")
            if found := other_language(p, lang):
                mixed[view] = found

        each_view(w, PHONE, errors, check)

        # The desktop layout: the list pane, its placeholder, then list and chat.
        page.set_viewport_size(DESKTOP)
        page.goto("/chats")
        page.get_by_test_id("desk-empty").wait_for()
        settle(page)
        if found := other_language(page, lang):
            mixed["desktop chats"] = found
        open_chat(page, w.conv)
        settle(page)
        shot(page, f"desktop-{lang}")
        if found := other_language(page, lang):
            mixed["desktop chat"] = found
        page.set_viewport_size(PHONE)

        # Vant's dialog buttons: its locale follows the app's.
        page.goto(f"/groups/{w.gid}")
        page.get_by_test_id("group-leave").click()
        page.locator(".van-dialog").wait_for()
        page.wait_for_timeout(300)
        if found := other_language(page, lang):
            mixed["leave dialog"] = found
        page.locator(".van-dialog__cancel").click()

        # The server's refusals are shown in the user's language, from their codes.
        page.goto("/groups")
        page.get_by_test_id("join-group").click()
        field(page, "join-group-id").fill("987654")
        page.get_by_test_id("join-group-submit").click()
        page.locator(".van-toast", has_text=words["err_unknown_group"]).wait_for()

        guest = new_person(browser, server, "guest", errors, locale=LOCALES[lang])
        try:
            g = guest.page
            g.goto("/login")
            field(g, "login-mobile").fill(w.owner.mobile)
            field(g, "login-passwd").fill("not-the-password")
            g.get_by_test_id("login-submit").click()
            g.locator(".van-toast", has_text=words["err_wrong_password"]).wait_for()
        finally:
            guest.context.close()
    finally:
        w.close()
    assert not mixed, f"{lang} UI shows the other language: {mixed}"
    assert not errors, errors


def test_language_switch_in_me_is_remembered(server: str, browser: Any) -> None:
    errors: list[str] = []
    p = new_person(browser, server, "Cy", errors, locale="en-US", viewport=DESKTOP)
    try:
        register_and_login(p)
        page = p.page
        page.goto("/me")
        page.get_by_test_id("lang-switch").click()
        page.locator(".van-action-sheet__item", has_text="中文").click()
        page.get_by_test_id("tab-me").get_by_text(dictionary("zh")["me"]).wait_for()
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert page.evaluate("localStorage.getItem('imhub.lang')") == "zh"
        page.reload()
        page.get_by_test_id("tab-chats").get_by_text(dictionary("zh")["chats"]).wait_for()
        assert not other_language(page, "zh")
        page.goto("/me")
        page.get_by_test_id("lang-switch").click()
        page.locator(".van-action-sheet__item", has_text="English").click()
        page.get_by_test_id("tab-me").get_by_text("Me").wait_for()
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        p.context.close()
    assert not errors, errors
