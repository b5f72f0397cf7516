"""The conversation features of docs/protocol.md in a real Chromium against a real
``imhub serve``: delivered/read marks (✓ then ✓✓ once the receiver reads), the typing
indicator, recall from the message menu (gone on both sides), search by a Chinese
substring opening the chat at the hit (loaded from history), and group events (a member
removal) as centered system lines. Screenshots: chat-receipts, search, group-events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web_client import (
    TIMEOUT,
    Person,
    add_friend,
    conv_p,
    field,
    last_mine_sent,
    new_person,
    open_chat,
    register_and_login,
    send_text,
    shot,
    texts,
    wait_online,
)

pytestmark = pytest.mark.slow


def message(page: Any, text: str) -> Any:
    return page.locator('[data-testid="message"]', has_text=text).last


def test_receipts_typing_recall_search_and_group_events(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "Alice", errors)
    bob = new_person(browser, server, "Bob", errors)
    try:
        _scenario(alice, bob)
    finally:
        for p in (alice, bob):
            p.context.close()
    assert not errors, errors


def _scenario(alice: Person, bob: Person) -> None:
    register_and_login(alice)
    register_and_login(bob)
    add_friend(alice, bob)
    conv = conv_p(alice, bob)
    a, b = alice.page, bob.page

    # --- ✓ delivered while Bob is online elsewhere, ✓✓ once he opens the chat ---------
    b.get_by_test_id("tab-chats").click()
    open_chat(a, conv)
    send_text(a, "Are you there?")
    message(a, "Are you there?").locator('[data-receipt="delivered"], [data-testid="msg-receipt"]').first.wait_for()
    a.wait_for_selector('[data-testid="message"][data-receipt="delivered"]', state="attached")
    assert message(a, "Are you there?").get_by_test_id("msg-receipt").inner_text() == "✓"
    # Bob's tab title and badge count it until he reads it
    b.wait_for_function("() => document.title.startsWith('(1)')")
    b.locator(f'[data-testid="conv-item"][data-conv="{conv}"]').click()
    b.locator('[data-testid="msg-text"]', has_text="Are you there?").wait_for()
    a.wait_for_selector('[data-testid="message"][data-receipt="read"]', state="attached")
    assert message(a, "Are you there?").get_by_test_id("msg-receipt").inner_text() == "✓✓"
    b.wait_for_function("() => document.title === 'imhub'")

    # --- typing: Bob types, Alice sees it under the title; it expires by itself -------
    send_text(b, "Yes! 你好 👋")
    a.locator('[data-testid="msg-text"]', has_text="你好").wait_for()
    b.get_by_test_id("composer-input").fill("I am typ")
    a.locator('[data-testid="chat-subtitle"]', has_text="typing").wait_for()
    shot(a, "chat-receipts")
    b.get_by_test_id("composer-input").fill("")
    a.locator('[data-testid="chat-subtitle"]', has_text="typing").wait_for(state="detached", timeout=10_000)
    assert a.get_by_test_id("chat-subtitle").inner_text() == "Online"

    # --- recall from the message menu (right click here; long press on touch) ----------
    secret = "oops, wrong chat 🙈"
    send_text(a, secret)
    b.locator('[data-testid="msg-text"]', has_text=secret).wait_for()
    message(a, secret).get_by_test_id("bubble").click(button="right")
    a.get_by_role("button", name="Recall").click()
    for p in (a, b):
        p.locator('[data-testid="message"][data-recalled="1"]').first.wait_for()
        assert secret not in p.get_by_test_id("messages").inner_text()
    # Bob cannot recall Alice's message: his menu has no Recall
    message(b, "Are you there?").get_by_test_id("bubble").click(button="right")
    b.get_by_role("button", name="Copy").wait_for()
    assert b.get_by_role("button", name="Recall").count() == 0
    b.get_by_role("button", name="Cancel").click()

    # --- search: a Chinese substring, deep in history, opens the chat at the hit -------
    send_text(b, "明天天气很好，去爬山吧")
    box = b.get_by_test_id("composer-input")
    for i in range(40):  # push the hit out of the initial window (30)
        box.fill(f"filler {i}")
        box.press("Enter")
    last_mine_sent(b, "filler 39")
    a.goto("/chats")  # a fresh page: only the newest 30 messages get loaded
    wait_online(a)
    a.get_by_test_id("open-search").click()
    a.wait_for_url("**/chat/search")
    search = field(a, "search-input")
    search.fill("天气")
    search.press("Enter")
    hit = a.get_by_test_id("search-hit").first
    hit.wait_for()
    assert "明天天气很好" in hit.inner_text()
    assert a.locator('[data-testid="search-hit"] mark').first.inner_text() == "天气"
    shot(a, "search")
    hit.click()
    a.wait_for_url(f"**/chat/{conv}?seq=*")
    target = a.locator('[data-testid="message"]', has_text="明天天气很好")
    target.wait_for()
    a.wait_for_function(
        """() => { const el = [...document.querySelectorAll('[data-testid="message"]')]
             .find(e => e.innerText.includes('明天天气很好'));
           const box = document.querySelector('[data-testid="messages"]').getBoundingClientRect();
           if (!el) return false; const r = el.getBoundingClientRect();
           return r.top >= box.top && r.bottom <= box.bottom }""",
        timeout=TIMEOUT,
    )
    seqs = [int(s) for s in a.locator('[data-testid="message"]').evaluate_all(
        "els => els.map(e => e.dataset.seq).filter(Boolean)")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "history around the hit is contiguous"
    assert texts(a).count("明天天气很好，去爬山吧") == 1

    # --- group: Bob joins Alice's group, Alice removes him; both see the event lines --
    a.goto("/groups")
    a.get_by_test_id("create-group").click()
    field(a, "group-name").fill("Book club")
    a.get_by_test_id("group-create-submit").click()
    a.wait_for_url("**/groups/*")
    gid = int(a.url.rstrip("/").rsplit("/", 1)[1])
    b.goto("/groups")
    b.get_by_test_id("join-group").click()
    field(b, "join-group-id").fill(str(gid))
    b.get_by_test_id("join-group-submit").click()
    b.wait_for_url(f"**/groups/{gid}")
    open_chat(b, f"g{gid}")
    send_text(b, "Hi all 📚")
    open_chat(a, f"g{gid}")
    a.locator('[data-testid="event-line"]', has_text="Bob joined").wait_for()
    a.locator('[data-testid="msg-text"]', has_text="Hi all").wait_for()
    # Bob's message gets "read by 1" once Alice has it open
    b.locator('[data-testid="msg-read-by"]', has_text="Read by 1").wait_for()
    a.goto(f"/groups/{gid}")
    a.locator(f'[data-testid="member"][data-user="{bob.id}"]').click()
    a.locator(".van-dialog").get_by_role("button", name="Remove from group").click()
    a.locator('[data-testid="member"]').nth(1).wait_for(state="detached")
    b.locator('[data-testid="event-line"]', has_text="Alice removed you").wait_for()
    open_chat(a, f"g{gid}")
    a.locator('[data-testid="event-line"]', has_text="You removed Bob").wait_for()
    lines = a.get_by_test_id("event-line").all_inner_texts()
    assert lines[-3:] == ['You created the group "Book club"', "Bob joined", "You removed Bob"], lines
    shot(a, "group-events")
