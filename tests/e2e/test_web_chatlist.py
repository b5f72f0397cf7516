"""Issue #18 item 14 in a real Chromium: contacts in pinyin order under index letters
with an index bar (曾 read as a surname, Latin names among Chinese ones), and the chat
list's long-press / right-click actions kept by the browser: mark as unread (a dot until
opened) and delete from my list (gone across reloads until a new message arrives).
Pin and mute are server-side (another branch) and not tested here. Screenshots:
contacts-index, chat-list-menu."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.helpers import logged_in
from tests.e2e.test_web_client import (
    Person,
    conv_p,
    open_chat,
    send_text,
    shot,
    wait_online,
)

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}

NAMES = ["张三", "Zoe", "李四", "alice", "曾小贤", "阿明"]


def register_friend(me: Person, name: str) -> int:
    """Another account (over the API, from my page) that becomes my friend."""
    mobile = "137" + str(uuid.uuid4().int)[:8]
    return int(
        me.page.evaluate(
            """async ([mobile, name, me]) => {
              const post = async (path, body) =>
                (await fetch(path, { method: 'POST', body: new URLSearchParams(body) })).json()
              await post('/user/register', { mobile, passwd: 'secret-x1', nickname: name })
              const found = await post('/user/find', { mobile })
              await post('/contact/addfriend', { userid: me, dstid: found.data.id })
              return found.data.id
            }""",
            [mobile, name, me.id],
        )
    )


def row(page: Any, conv: str) -> Any:
    return page.locator(f'[data-testid="conv-item"][data-conv="{conv}"]')


@pytest.mark.parametrize("viewport", [None, DESKTOP], ids=["phone", "desktop"])
def test_contacts_index_and_chat_list_actions(server: str, browser: Any, viewport: dict[str, int] | None) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Hu", "Bo"], errors, viewport=viewport, befriend=True) as (me, bo):
        ids = {name: register_friend(me, name) for name in NAMES}

        # --- contacts: pinyin order under letters, index bar at the side -------------
        page = me.page
        page.goto("/contacts")
        page.locator(f'[data-testid="friend-item"][data-user="{ids["曾小贤"]}"]').wait_for()
        page.wait_for_function(  # the pinyin dictionary is loaded on demand
            "() => document.querySelector('[data-testid=\"friend-letter\"][data-letter=\"L\"]')"
        )
        letters = page.locator('[data-testid="friend-letter"]').evaluate_all("els => els.map(e => e.dataset.letter)")
        assert letters == ["A", "B", "L", "Z"]
        order = page.locator('[data-testid="friend-item"]').evaluate_all("els => els.map(e => e.dataset.user)")
        expected = [ids["阿明"], ids["alice"], bo.id, ids["李四"], ids["曾小贤"], ids["张三"], ids["Zoe"]]
        assert order == [str(i) for i in expected]
        bar = page.locator(".van-index-bar__sidebar .van-index-bar__index")
        assert bar.all_inner_texts() == ["A", "B", "L", "Z"]
        shot(page, "contacts-index")

        # --- chat list: two conversations -----------------------------------------------
        with_bo, with_zoe = conv_p(me, bo), f"p{min(me.id, ids['Zoe'])}_{max(me.id, ids['Zoe'])}"
        open_chat(page, with_zoe)
        send_text(page, "hi Zoe")
        open_chat(page, with_bo)
        send_text(page, "hi Bo")
        page.goto("/chats")
        wait_online(page)
        row(page, with_zoe).wait_for()

        # Right-click: mark as unread → a dot, kept across a reload, gone once opened.
        row(page, with_zoe).click(button="right")
        page.get_by_role("button", name="Mark as unread").click()
        row(page, with_zoe).locator(".van-badge--dot").wait_for()
        page.reload()
        wait_online(page)
        row(page, with_zoe).locator(".van-badge--dot").wait_for()
        row(page, with_zoe).click()
        page.wait_for_url(f"**/chat/{with_zoe}")
        page.goto("/chats")
        row(page, with_zoe).wait_for()
        assert row(page, with_zoe).locator(".van-badge--dot").count() == 0

        # Long press: delete from my list → gone, also after a reload …
        box = row(page, with_bo).bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 100, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.get_by_role("button", name="Delete from list").wait_for()
        page.mouse.up()
        shot(page, "chat-list-menu")
        assert page.url.endswith("/chats")  # the long press did not open the chat
        page.get_by_role("button", name="Delete from list").click()
        row(page, with_bo).wait_for(state="detached")
        page.reload()
        wait_online(page)
        row(page, with_zoe).wait_for()
        assert row(page, with_bo).count() == 0
        # … until Bo writes again.
        open_chat(bo.page, with_bo)
        send_text(bo.page, "are you there?")
        row(page, with_bo).wait_for()
        assert "are you there?" in row(page, with_bo).inner_text()
        page.reload()
        wait_online(page)
        row(page, with_bo).wait_for()
    assert not errors, errors
