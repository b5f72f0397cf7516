"""Issue #19 in the web client (real Chromium, real ``imhub serve``): updates (media 11)
change the message they name instead of being drawn. A message edited and reacted to
through another client (a raw WebSocket of the sender's second device) shows its new
text, "edited" and the reaction live and after a reload, on the recipient's and the
sender's screens; no bubble is ever empty; the updates are not unread nor the list's
preview; a message deleted for me on my other device goes away live. Phone 390x844
and desktop 1280x800."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.helpers import logged_in, new_group
from tests.e2e.test_web_client import (
    Person,
    conv_p,
    new_person,
    open_chat,
    send_text,
    shot,
)

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# Another client of the page's user: its own WebSocket (the session cookie logs it in),
# finds the message by its text in the history and sends `frames` about it, one after
# the other, each answered by rid.
RAW_CLIENT = """async ([me, conv, text, frames]) => {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const ws = new WebSocket(`${proto}//${location.host}/chat?id=${me}&autosync=0&v=2`)
  const waiting = {}
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data)
    if (f.rid && waiting[f.rid]) waiting[f.rid](f)
  }
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail })
  const ask = (frame) => new Promise((ok) => { waiting[frame.rid] = ok; ws.send(JSON.stringify(frame)) })
  const page = await ask({ cmd: 22, rid: 'h0', conv, limit: 50 })
  const target = page.msgs.find((m) => m.content === text)
  const answers = []
  let n = 0
  for (const f of frames) {
    const about = f.cmd === 52 ? { ids: [target.id] } : { id: target.id }
    answers.push(await ask({ ...f, ...about, rid: `x${++n}` }))
  }
  ws.close()
  return answers
}"""


def raw_client(p: Person, conv: str, text: str, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(p.page.evaluate(RAW_CLIENT, [p.id, conv, text, frames]))


def bubble(page: Any, text: str) -> Any:
    return page.locator('[data-testid="message"]', has=page.locator('[data-testid="msg-text"]', has_text=text))


def assert_no_empty_bubbles(page: Any) -> None:
    assert page.locator('[data-testid="message"][data-media="11"]').count() == 0
    empty = page.locator('[data-testid="bubble"]').evaluate_all(
        "els => els.filter(e => !e.innerText.trim() && !e.querySelector('img,video,audio,svg,i')).length"
    )
    assert empty == 0


def check_changed(page: Any, new_text: str, mine_reacted: bool) -> None:
    b = bubble(page, new_text)
    b.wait_for()
    b.get_by_test_id("msg-edited").wait_for()
    reaction = b.locator('[data-testid="msg-reaction"][data-emoji="👍"]')
    reaction.wait_for()
    assert reaction.inner_text().split() == ["👍", "1"]
    assert reaction.get_attribute("aria-pressed") == ("true" if mine_reacted else "false")
    assert_no_empty_bubbles(page)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_edit_and_reaction_from_another_client(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo"], errors, viewport=viewport, befriend=True) as (al, bo):
        conv = conv_p(al, bo)
        open_chat(al.page, conv)
        send_text(al.page, "hello wrld")
        bo.page.goto("/chats")
        row = bo.page.locator(f'[data-testid="conv-item"][data-conv="{conv}"]')
        row.filter(has_text="hello wrld").wait_for()

        # Al's second device edits the message and reacts to it.
        answers = raw_client(al, conv, "hello wrld", [
            {"cmd": 50, "content": "hello world"},
            {"cmd": 51, "emoji": "👍"},
        ])
        assert answers[0]["cmd"] == 43 and answers[0]["msg"]["memo"] == "edited"

        # Bo's list: the new text as the preview, one unread (the updates are not).
        row.filter(has_text="hello world").wait_for()
        assert row.locator(".van-badge").inner_text().strip() == "1"
        # Al's first device: live, the reaction is Al's own.
        check_changed(al.page, "hello world", mine_reacted=True)
        # Bo opens the chat: the latest state, the reaction not his.
        row.click()
        bo.page.get_by_test_id("messages").wait_for()
        check_changed(bo.page, "hello world", mine_reacted=False)
        assert bo.page.get_by_test_id("msg-text").all_inner_texts() == ["hello world"]
        shot(bo.page, f"message-edited-reacted-{'phone' if viewport is PHONE else 'desktop'}")

        # Bo taps the reaction: now 2, his highlighted, on both screens.
        bo_reaction = bubble(bo.page, "hello world").locator('[data-testid="msg-reaction"][data-emoji="👍"]')
        bo_reaction.click()
        bo.page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="msg-reaction"]')]
                 .some(e => e.getAttribute('aria-pressed') === 'true' && e.innerText.includes('2'))"""
        )
        al.page.locator('[data-testid="msg-reaction"]', has_text="2").wait_for()

        # After a reload (history returns the latest state) and a sync.
        for p, mine in ((al, True), (bo, True)):
            open_chat(p.page, conv)
            b = bubble(p.page, "hello world")
            b.get_by_test_id("msg-edited").wait_for()
            r = b.locator('[data-testid="msg-reaction"][data-emoji="👍"]')
            r.wait_for()
            assert r.inner_text().split() == ["👍", "2"]
            assert r.get_attribute("aria-pressed") == ("true" if mine else "false")
            assert_no_empty_bubbles(p.page)
            assert "hello wrld" not in p.page.get_by_test_id("messages").inner_text()

        # Bo's other device deletes a message for Bo: gone from this screen live (Bo's
        # own stream), still there for Al.
        send_text(al.page, "delete me")
        bubble(bo.page, "delete me").wait_for()
        raw_client(bo, conv, "delete me", [{"cmd": 52}])
        bubble(bo.page, "delete me").wait_for(state="detached")
        assert bubble(al.page, "delete me").count() == 1
        assert_no_empty_bubbles(bo.page)
        open_chat(bo.page, conv)
        bubble(bo.page, "hello world").wait_for()
        assert bubble(bo.page, "delete me").count() == 0
        assert errors == []


# Sends `n` texts from the page's user over its own WebSocket (history to scroll through).
RAW_SEND = """async ([me, dstid, prefix, n]) => {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const ws = new WebSocket(`${proto}//${location.host}/chat?id=${me}&autosync=0&v=2`)
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail })
  let acked = 0
  const done = new Promise((ok) => {
    ws.onmessage = (e) => { if (JSON.parse(e.data).cmd === 1 && ++acked === n) ok() }
  })
  for (let i = 0; i < n; i++) {
    ws.send(JSON.stringify({ cmd: 10, dstid, media: 1, content: `${prefix} ${i}`, cid: `${prefix}-${i}` }))
  }
  await done
  ws.close()
}"""


def server_row_read(p: Person, conv: str) -> None:
    """Wait until the server's conversation list has `conv` read (no unread, no mention)."""
    deadline = time.monotonic() + 15
    while True:
        rows = p.page.evaluate(
            "async () => (await (await fetch('/message/conversations', {method: 'POST'})).json()).rows"
        )
        row = next((r for r in rows or [] if r.get("conv") == conv), None)
        if row and row["unread"] == 0 and not row.get("mentioned"):
            return
        assert time.monotonic() < deadline, row
        p.page.wait_for_timeout(300)


def menu_action(page: Any, text: str, action: str) -> None:
    """Open the message menu of the bubble with `text` (right click: the sheet on a
    phone, the menu at the pointer on a desktop) and pick `action`."""
    # The menu at the pointer closes when the list scrolls (a history page coming in
    # while the chat settles): open it again then.
    open_menu(page, text, action)
    menu_item(page, action).click()


def open_menu(page: Any, text: str, shows: str) -> None:
    """Right click the bubble with `text` until its menu shows `shows`."""
    for _ in range(3):
        bubble(page, text).last.get_by_test_id("bubble").click(button="right")
        try:
            menu_item(page, shows).wait_for(timeout=3000)
            return
        except Exception:
            page.keyboard.press("Escape")
    bubble(page, text).last.get_by_test_id("bubble").click(button="right")
    menu_item(page, shows).wait_for()


def menu_item(page: Any, action: str) -> Any:
    items = page.locator(".van-action-sheet__item:visible, [role=menuitem]:visible")
    return items.filter(has_text=re.compile(f"^{re.escape(action)}$"))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_menu_reply_edit_react_delete(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo"], errors, viewport=viewport, befriend=True) as (al, bo):
        conv = conv_p(al, bo)
        open_chat(al.page, conv)
        send_text(al.page, "the original question")
        al.page.evaluate(RAW_SEND, [al.id, bo.id, "filler", 45])  # push it out of the first window (30)
        open_chat(bo.page, conv)
        bubble(bo.page, "filler 44").wait_for()
        # Read on the server (not the first unread any more): a reload shows the last 30 only.
        server_row_read(bo, conv)
        open_chat(bo.page, conv)
        bubble(bo.page, "filler 44").wait_for()

        # Reply: Bo answers the last filler; the quote shows above the composer and in the bubble.
        menu_action(bo.page, "filler 44", "Reply")
        quote_bar = bo.page.get_by_test_id("composer-quote")
        quote_bar.wait_for()
        assert "filler 44" in quote_bar.inner_text()
        send_text(bo.page, "an answer")
        quote_bar.wait_for(state="detached")
        for p in (bo, al):
            q = bubble(p.page, "an answer").get_by_test_id("msg-quote")
            q.wait_for()
            assert "filler 44" in q.inner_text()

        # A reply to a message far up: tapping the quote loads older pages and scrolls there.
        al.page.evaluate(
            """async ([me, dstid]) => {
              const ws = new WebSocket(`ws://${location.host}/chat?id=${me}&autosync=0&v=2`)
              await new Promise((ok) => { ws.onopen = ok })
              const ask = (f) => new Promise((ok) => {
                ws.onmessage = (e) => {
                  const r = JSON.parse(e.data)
                  if ((f.rid && r.rid === f.rid) || (f.cid && r.cid === f.cid)) ok(r)
                }
                ws.send(JSON.stringify(f))
              })
              const conv = dstid < me ? `p${dstid}_${me}` : `p${me}_${dstid}`
              const h = await ask({ cmd: 22, rid: 'h', conv, limit: 50, before: 5 })
              const orig = h.msgs.find((m) => m.content === 'the original question')
              await ask({ cmd: 10, dstid, media: 1, content: 'remember this?', reply_to: orig.id, cid: 'q-1' })
              ws.close()
            }""",
            [al.id, bo.id],
        )
        q = bubble(bo.page, "remember this?").get_by_test_id("msg-quote")
        q.wait_for()
        assert "the original question" in q.inner_text()
        q.click()
        target = bubble(bo.page, "the original question")
        target.wait_for()
        bo.page.wait_for_function(
            """() => { const el = [...document.querySelectorAll('[data-testid="msg-text"]')]
                 .find(e => e.innerText === 'the original question'); if (!el) return false
               const r = el.getBoundingClientRect()
               const l = document.querySelector('[data-testid="messages"]').getBoundingClientRect()
               return r.top >= l.top && r.bottom <= l.bottom }"""
        )

        # Edit: Al edits his own message; both screens follow.
        open_chat(al.page, conv)
        menu_action(al.page, "filler 44", "Edit")
        box = al.page.get_by_test_id("composer-input")
        assert box.input_value() == "filler 44"
        box.fill("filler 44 (edited)")
        al.page.get_by_test_id("send").click()
        for p in (al, bo):
            bubble(p.page, "filler 44 (edited)").get_by_test_id("msg-edited").wait_for()
        assert box.input_value() == ""
        # Bo's menu on Al's message has no Edit.
        open_menu(bo.page, "filler 44 (edited)", "Reply")
        assert menu_item(bo.page, "Edit").count() == 0
        bo.page.keyboard.press("Escape")
        menu_item(bo.page, "Reply").wait_for(state="hidden")

        # React: a small emoji row.
        menu_action(bo.page, "filler 44 (edited)", "React")
        bo.page.get_by_test_id("react-picker").locator('[data-emoji="❤️"]').click()
        for p, mine in ((bo, "true"), (al, "false")):
            r = bubble(p.page, "filler 44 (edited)").locator('[data-testid="msg-reaction"][data-emoji="❤️"]')
            r.wait_for()
            assert r.get_attribute("aria-pressed") == mine
        shot(bo.page, f"message-menu-features-{'phone' if viewport is PHONE else 'desktop'}")

        # Delete for me: gone for Bo (also after reload), still there for Al.
        menu_action(bo.page, "an answer", "Delete for me")
        bubble(bo.page, "an answer").wait_for(state="detached")
        open_chat(bo.page, conv)
        bubble(bo.page, "filler 44 (edited)").wait_for()
        assert bubble(bo.page, "an answer").count() == 0
        assert bubble(al.page, "an answer").count() == 1
        assert_no_empty_bubbles(bo.page)
        assert errors == []


def login_again(browser: Any, base: str, p: Person, errors: list[str], viewport: dict[str, int]) -> Person:
    """The same user on a second device (another browser context)."""
    other = new_person(browser, base, p.name, errors, viewport=viewport)
    other.mobile, other.passwd, other.id = p.mobile, p.passwd, p.id
    page = other.page
    page.goto("/login")
    page.locator('[data-testid="login-mobile"] input').fill(p.mobile)
    page.locator('[data-testid="login-passwd"] input').fill(p.passwd)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/chats")
    return other


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_chat_list_pin_and_mute_on_every_device(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo", "Cy"], errors, viewport=viewport, befriend=True) as people:
        al, bo, cy = people
        for p, text in ((bo, "from bo"), (cy, "from cy")):
            open_chat(p.page, conv_p(al, p))
            send_text(p.page, text)
        al2 = login_again(browser, server, al, errors, viewport)
        people.append(al2)
        with_bo, with_cy = conv_p(al, bo), conv_p(al, cy)
        for page in (al.page, al2.page):
            page.goto("/chats")
            page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"]').wait_for()

        def order(page: Any) -> list[str]:
            return list(page.locator('[data-testid="conv-item"]').evaluate_all("els => els.map(e => e.dataset.conv)"))

        assert order(al.page)[:2] == [with_cy, with_bo]  # newest first
        row = al.page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"]')
        row.click(button="right")
        al.page.locator(".van-action-sheet__item:visible", has_text="Pin to top").click()
        row2 = al2.page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"]')
        for page, r in ((al.page, row), (al2.page, row2)):
            page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"][data-pinned="1"]').wait_for()
            r.get_by_test_id("conv-pinned").wait_for()
            assert order(page)[:2] == [with_bo, with_cy]  # pinned first

        # Mute the other one (from the second device this time).
        al2.page.locator(f'[data-testid="conv-item"][data-conv="{with_cy}"]').click(button="right")
        al2.page.locator(".van-action-sheet__item:visible", has_text="Mute").click()
        for page in (al.page, al2.page):
            page.locator(f'[data-testid="conv-item"][data-conv="{with_cy}"]').get_by_test_id("conv-muted").wait_for()
        shot(al.page, f"chat-list-pin-mute-{'phone' if viewport is PHONE else 'desktop'}")

        # A new message in the muted chat: counted (a dot), not a number; still below the pin.
        send_text(cy.page, "still there?")
        cy_row = al.page.locator(f'[data-testid="conv-item"][data-conv="{with_cy}"]')
        cy_row.filter(has_text="still there?").wait_for()
        assert cy_row.locator(".van-badge--dot").count() == 1
        assert order(al.page)[:2] == [with_bo, with_cy]

        # After a reload: the server's list says the same.
        al2.page.reload()
        al2.page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"][data-pinned="1"]').wait_for()
        al2.page.locator(f'[data-testid="conv-item"][data-conv="{with_cy}"][data-muted="1"]').wait_for()
        assert order(al2.page)[:2] == [with_bo, with_cy]

        # Unpin from the menu again.
        row.click(button="right")
        al.page.locator(".van-action-sheet__item:visible", has_text="Unpin from top").click()
        al2.page.locator(f'[data-testid="conv-item"][data-conv="{with_bo}"]:not([data-pinned])').wait_for()
        assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_mention_picker_and_forward(server: str, browser: Any, viewport: dict[str, int]) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Al", "Bo", "Cy"], errors, viewport=viewport, befriend=True) as (al, bo, cy):
        gid = new_group(al, bo, cy)
        for p, text in ((bo, "hello bo"), (cy, "hello cy")):
            open_chat(al.page, conv_p(al, p))
            send_text(al.page, text)
        for p in (bo, cy):
            p.page.goto("/chats")
            p.page.locator(f'[data-testid="conv-item"][data-conv="{conv_p(al, p)}"]').wait_for()

        # @ in the group's composer: a picker of the members; the pick mentions Bo.
        open_chat(al.page, f"g{gid}")
        box = al.page.get_by_test_id("composer-input")
        box.press_sequentially("look @")
        picker = al.page.locator(".van-action-sheet:visible", has_text="Mention someone")
        picker.wait_for()
        assert picker.locator(".van-action-sheet__item", has_text="Everyone").count() == 1  # Al owns the group
        picker.locator(".van-action-sheet__item", has_text="Bo").click()
        assert box.input_value() == "look @Bo "
        box.press_sequentially("here")
        al.page.get_by_test_id("send").click()
        bubble(al.page, "look @Bo here").wait_for()
        group_row = bo.page.locator(f'[data-testid="conv-item"][data-conv="g{gid}"]')
        group_row.get_by_test_id("conv-mentioned").wait_for()
        assert group_row.get_by_test_id("conv-mentioned").inner_text() == "[@you]"
        cy.page.locator(f'[data-testid="conv-item"][data-conv="g{gid}"]').filter(has_text="look @Bo here").wait_for()
        cy_group = cy.page.locator(f'[data-testid="conv-item"][data-conv="g{gid}"]')
        assert cy_group.get_by_test_id("conv-mentioned").count() == 0
        group_row.click()
        bubble(bo.page, "look @Bo here").locator('[data-testid="bubble"][data-at-me="1"]').wait_for()
        server_row_read(bo, f"g{gid}")  # the read cursor reached the server (sent debounced)
        bo.page.goto("/chats")
        group_row.wait_for()
        group_row.get_by_test_id("conv-mentioned").wait_for(state="detached")  # read

        # Forward a group message to two conversations at once.
        send_text(al.page, "forward me")
        menu_action(al.page, "forward me", "Forward")
        fwd = al.page.get_by_test_id("forward-picker")
        fwd.locator(f'[data-testid="forward-target"][data-conv="{conv_p(al, bo)}"]').click()
        fwd.locator(f'[data-testid="forward-target"][data-conv="{conv_p(al, cy)}"]').click()
        shot(al.page, f"forward-picker-{'phone' if viewport is PHONE else 'desktop'}")
        fwd.get_by_test_id("forward-send").click()
        for p in (bo, cy):
            row = p.page.locator(f'[data-testid="conv-item"][data-conv="{conv_p(al, p)}"]')
            row.filter(has_text="forward me").wait_for()
            row.click()
            bubble(p.page, "forward me").get_by_test_id("msg-forwarded").wait_for()
            p.page.goto("/chats")
        open_chat(al.page, conv_p(al, cy))
        bubble(al.page, "forward me").get_by_test_id("msg-forwarded").wait_for()
        assert errors == []
