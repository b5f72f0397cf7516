"""Issue #19 in the web client, the lists behind a message (real Chromium, real ``imhub
serve``), at phone 390x844 and desktop 1280x800:

- **several messages forwarded at once**: "Select" in the message menu, checkboxes, a
  bar with Forward / Cancel; one cmd 55 carrying every id to two conversations, where
  they arrive marked forwarded, in the order they were written;
- **who reacted**: a long press (or right click) on a reaction, or "Reactions" in the
  menu, lists the members who chose each emoji by name;
- **all pins**: the bar shows the newest pin and "n pinned"; the list has every pinned
  message (older pages loaded to show one not on screen), a tap scrolls to it, and the
  list unpins for those allowed.

The new sheets pass axe-core (serious/critical) like the other views (test_web_a11y.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.helpers import logged_in, new_group
from tests.e2e.test_web_a11y import AXE, axe_violations
from tests.e2e.test_web_client import (
    conv_p,
    open_chat,
    send_text,
    shot,
    texts,
)
from tests.e2e.test_web_message_features import (
    DESKTOP,
    PHONE,
    RAW_SEND,
    bubble,
    menu_action,
    raw_client,
    server_row_read,
)

pytestmark = pytest.mark.slow


def size_name(viewport: dict[str, int]) -> str:
    return "phone" if viewport is PHONE else "desktop"


def still(page: Any) -> None:
    """Wait until no transition runs (sheets slid in, the menu's sheet gone)."""
    page.wait_for_function("() => document.getAnimations().every((a) => a.playState !== 'running')")


def no_axe_violation(page: Any) -> None:
    assert AXE.is_file(), f"{AXE} missing: run make -C frontend build"
    still(page)
    problems = axe_violations(page)
    assert not problems, problems


def shot_when_still(page: Any, name: str) -> None:
    still(page)
    shot(page, name)


def in_view(page: Any, text: str) -> None:
    """Wait until the bubble with `text` is inside the visible part of the list."""
    page.wait_for_function(
        """(text) => { const el = [...document.querySelectorAll('[data-testid="msg-text"]')]
             .find(e => e.innerText === text); if (!el) return false
           const r = el.getBoundingClientRect()
           const l = document.querySelector('[data-testid="messages"]').getBoundingClientRect()
           return r.top >= l.top && r.bottom <= l.bottom }""",
        arg=text,
    )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_forward_several_messages_at_once(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo", "Cy"], errors, viewport=viewport, befriend=True) as (al, bo, cy):
        gid = new_group(al, cy)
        with_bo, with_cy, group = conv_p(al, bo), conv_p(al, cy), f"g{gid}"
        open_chat(al.page, with_cy)
        send_text(al.page, "hi cy")
        open_chat(al.page, group)
        send_text(al.page, "hi team")

        open_chat(bo.page, with_bo)
        send_text(bo.page, "first, from bo")
        sent: list[dict[str, Any]] = []  # the forward requests (cmd 55) Al's page sends

        def on_socket(ws: Any) -> None:
            def on_frame(payload: Any) -> None:
                if '"cmd":55' in str(payload):
                    sent.append(json.loads(payload))

            ws.on("framesent", on_frame)

        al.page.on("websocket", on_socket)
        open_chat(al.page, with_bo)
        bubble(al.page, "first, from bo").wait_for()
        send_text(al.page, "second, from al")
        send_text(al.page, "not this one")
        send_text(al.page, "third, from al")

        # "Select" in the menu: the chat shows checkboxes and a bar instead of the composer.
        menu_action(al.page, "second, from al", "Select")
        bar = al.page.get_by_test_id("select-bar")
        bar.wait_for()
        assert al.page.get_by_test_id("composer-input").is_hidden()
        count = al.page.get_by_test_id("select-count")
        assert count.inner_text() == "1 selected"
        assert bubble(al.page, "second, from al").get_attribute("data-selected") == "1"
        # A checkbox, a tap on a row (older than the first pick), another checkbox; one off again.
        bubble(al.page, "third, from al").get_by_test_id("msg-select").click()
        al.page.locator('[data-testid="select-count"]', has_text="2 selected").wait_for()
        bubble(al.page, "first, from bo").click()
        al.page.locator('[data-testid="select-count"]', has_text="3 selected").wait_for()
        bubble(al.page, "not this one").get_by_test_id("msg-select").click()
        al.page.locator('[data-testid="select-count"]', has_text="4 selected").wait_for()
        box = bubble(al.page, "not this one").get_by_test_id("msg-select")
        box.click()
        assert box.get_attribute("aria-checked") == "false"
        assert count.inner_text() == "3 selected"
        # Menus stay shut while choosing (a right click chooses nothing else either).
        bubble(al.page, "third, from al").click(button="right")
        assert al.page.locator(".van-action-sheet:visible, [role=menu]").count() == 0
        assert count.inner_text() == "3 selected"
        shot(al.page, f"select-messages-{size_name(viewport)}")
        no_axe_violation(al.page)

        # Cancel leaves the mode; Select again and forward the three to Cy and the group.
        al.page.get_by_test_id("select-cancel").click()
        bar.wait_for(state="detached")
        al.page.get_by_test_id("composer-input").wait_for()
        assert al.page.get_by_test_id("msg-select").count() == 0
        menu_action(al.page, "third, from al", "Select")
        for text in ("first, from bo", "second, from al"):
            bubble(al.page, text).get_by_test_id("msg-select").click()
        assert count.inner_text() == "3 selected"
        al.page.get_by_test_id("select-forward").click()
        fwd = al.page.get_by_test_id("forward-picker")
        fwd.locator(f'[data-testid="forward-target"][data-conv="{with_cy}"]').click()
        fwd.locator(f'[data-testid="forward-target"][data-conv="{group}"]').click()
        fwd.get_by_test_id("forward-send").click()
        bar.wait_for(state="detached")
        al.page.get_by_test_id("composer-input").wait_for()

        # One cmd 55 with every id, oldest first, to both conversations.
        assert len(sent) == 1, sent
        assert sorted(sent[0]["to"]) == sorted([with_cy, group])
        assert len(sent[0]["ids"]) == 3 and sent[0]["ids"] == sorted(sent[0]["ids"])

        # They arrive forwarded, in order, for Cy in both chats (and for Al in them).
        want = ["first, from bo", "second, from al", "third, from al"]
        for p, conv in ((cy, with_cy), (cy, group), (al, group)):
            open_chat(p.page, conv)
            bubble(p.page, "third, from al").get_by_test_id("msg-forwarded").wait_for()
            got = [t for t in texts(p.page) if t in want]
            assert got == want, (conv, got)
            for text in want:
                assert bubble(p.page, text).get_by_test_id("msg-forwarded").count() == 1
        assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_who_reacted(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo", "Cy"], errors, viewport=viewport) as (al, bo, cy):
        gid = new_group(al, bo, cy)
        group = f"g{gid}"
        open_chat(al.page, group)
        send_text(al.page, "react to me")
        for p in (bo, cy):
            open_chat(p.page, group)
            bubble(p.page, "react to me").wait_for()
        raw_client(bo, group, "react to me", [{"cmd": 51, "emoji": "👍"}])
        raw_client(cy, group, "react to me", [{"cmd": 51, "emoji": "👍"}, {"cmd": 51, "emoji": "😂"}])
        thumbs = bubble(al.page, "react to me").locator('[data-testid="msg-reaction"][data-emoji="👍"]')
        al.page.locator('[data-testid="msg-reaction"][data-emoji="👍"]', has_text="2").wait_for()
        al.page.locator('[data-testid="msg-reaction"][data-emoji="😂"]').wait_for()

        # A long press on the 😂 chip (the mouse held down): who chose it comes first; the
        # press does not add Al's reaction.
        laugh = bubble(al.page, "react to me").locator('[data-testid="msg-reaction"][data-emoji="😂"]')
        laugh.hover()
        al.page.mouse.down()
        sheet = al.page.get_by_test_id("reactors-sheet")
        sheet.get_by_test_id("reactors-row").first.wait_for()
        al.page.mouse.up()

        def rows() -> list[tuple[str, str]]:
            return [
                (r.get_attribute("data-emoji") or "", r.get_by_test_id("reactors-names").inner_text().strip())
                for r in sheet.get_by_test_id("reactors-row").all()
            ]

        assert rows() == [("😂", "Cy"), ("👍", "Bo, Cy")]
        assert laugh.get_attribute("aria-pressed") == "false"
        shot_when_still(al.page, f"who-reacted-{size_name(viewport)}")
        no_axe_violation(al.page)
        al.page.keyboard.press("Escape")
        sheet.get_by_test_id("reactors-row").first.wait_for(state="hidden")
        assert laugh.inner_text().split() == ["😂", "1"]

        # A tap still toggles Al's own reaction; the list then names him too ("You").
        thumbs.click()
        al.page.locator('[data-testid="msg-reaction"][data-emoji="👍"][aria-pressed="true"]', has_text="3").wait_for()
        # A right click on a chip, and "Reactions" in the message menu, open the same list.
        thumbs.click(button="right")
        sheet.get_by_test_id("reactors-row").first.wait_for()
        assert rows() == [("👍", "Bo, Cy, You"), ("😂", "Cy")]
        al.page.keyboard.press("Escape")
        sheet.get_by_test_id("reactors-row").first.wait_for(state="hidden")
        menu_action(bo.page, "react to me", "Reactions")
        bo_sheet = bo.page.get_by_test_id("reactors-sheet")
        bo_sheet.get_by_test_id("reactors-row").first.wait_for()
        names = bo_sheet.get_by_test_id("reactors-names").all_inner_texts()
        assert [n.strip() for n in names] == ["You, Cy, Al", "Cy"]
        bo.page.keyboard.press("Escape")
        bo_sheet.get_by_test_id("reactors-row").first.wait_for(state="hidden")
        # The emoji row of "React" is a named dialog too.
        menu_action(bo.page, "react to me", "React")
        bo.page.get_by_test_id("react-picker").locator('[data-emoji="❤️"]').wait_for()
        no_axe_violation(bo.page)
        assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_all_pinned_messages(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo"], errors, viewport=viewport, befriend=True) as (al, bo):
        conv = conv_p(al, bo)
        open_chat(al.page, conv)
        send_text(al.page, "pin me first")
        raw_client(al, conv, "pin me first", [{"cmd": 53}])
        # Far out of the first window (30) and the page above it (50) a chat may load at once.
        al.page.evaluate(RAW_SEND, [al.id, bo.id, "filler", 55])
        al.page.wait_for_timeout(3500)  # the send rate's bucket (burst 60) fills up again
        al.page.evaluate(RAW_SEND, [al.id, bo.id, "more", 55])
        send_text(al.page, "pin me second")
        menu_action(al.page, "pin me second", "Pin")
        al.page.locator('[data-testid="pinned-all"]', has_text="2 pinned").wait_for()
        assert "pin me second" in al.page.get_by_test_id("pinned-bar").inner_text()

        # Bo, having read everything: a reload shows the last 30 only; the bar the newest pin.
        open_chat(bo.page, conv)
        bubble(bo.page, "pin me second").wait_for()
        server_row_read(bo, conv)
        open_chat(bo.page, conv)
        bubble(bo.page, "pin me second").wait_for()
        assert bubble(bo.page, "pin me first").count() == 0
        bo.page.locator('[data-testid="pinned-bar"]', has_text="pin me second").wait_for()

        # "2 pinned": both, newest first; the one far up is fetched (older pages) to show it.
        bo.page.get_by_test_id("pinned-all").click()
        sheet = bo.page.get_by_test_id("pins-sheet")
        items = sheet.get_by_test_id("pin-item")
        sheet.locator('[data-testid="pin-text"]', has_text="pin me first").wait_for()
        assert [t.strip() for t in items.get_by_test_id("pin-text").all_inner_texts()] == [
            "pin me second",
            "pin me first",
        ]
        shot_when_still(bo.page, f"pinned-list-{size_name(viewport)}")
        no_axe_violation(bo.page)

        # A tap on one: the list closes and the chat scrolls to it.
        items.filter(has_text="pin me first").locator(".pin-go").click()
        sheet.get_by_test_id("pin-item").first.wait_for(state="hidden")
        in_view(bo.page, "pin me first")

        # Unpin from the list (either side may in a 1:1 chat): gone for both.
        bo.page.get_by_test_id("pinned-all").click()
        items.filter(has_text="pin me second").get_by_test_id("pin-unpin").click()
        items.filter(has_text="pin me second").wait_for(state="detached")
        assert items.count() == 1
        for p in (al, bo):
            p.page.locator('[data-testid="pinned-all"]', has_text="1 pinned").wait_for()
            p.page.locator('[data-testid="pinned-bar"]', has_text="pin me first").wait_for()
        bo.page.keyboard.press("Escape")

        # The main bar goes to the newest pin, here one not loaded on Al's reloaded screen.
        server_row_read(al, conv)
        open_chat(al.page, conv)
        al.page.locator('[data-testid="pinned-all"]', has_text="1 pinned").wait_for()
        assert bubble(al.page, "pin me first").count() == 0
        al.page.get_by_test_id("pinned-bar").click()
        in_view(al.page, "pin me first")
        al.page.locator('[data-testid="pinned-bar"]', has_text="pin me first").wait_for()
        assert errors == []


@pytest.mark.parametrize("viewport", [PHONE], ids=["phone"])
def test_group_member_sees_pins_without_unpin(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo"], errors, viewport=viewport) as (al, bo):
        gid = new_group(al, bo)
        group = f"g{gid}"
        open_chat(al.page, group)
        send_text(al.page, "house rules")
        menu_action(al.page, "house rules", "Pin")
        open_chat(bo.page, group)
        bo.page.get_by_test_id("pinned-all").click()
        sheet = bo.page.get_by_test_id("pins-sheet")
        sheet.locator('[data-testid="pin-text"]', has_text="house rules").wait_for()
        assert sheet.get_by_test_id("pin-unpin").count() == 0  # only the owner and admins
        al.page.get_by_test_id("pinned-all").click()
        al.page.get_by_test_id("pins-sheet").get_by_test_id("pin-unpin").wait_for()
        assert errors == []
