"""The consent model in a real Chromium against ``imhub serve`` with the default
friend policy (``request``): Alice adds Bob, sees "request sent" and no friend yet; Bob
gets the request live with a badge on the contacts tab, accepts it; both are friends
and chat. Joining Bob's (default, ``approval``) group by id says "join request sent".
Bob blocks Alice: her next message fails as to a stranger."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_web_client import (
    conv_p,
    field,
    new_person,
    open_chat,
    register_and_login,
    send_text,
)

pytestmark = pytest.mark.slow

SERVER_ENV = {"IMHUB_FRIEND_POLICY": "request", "IMHUB_GROUP_JOIN_POLICY": "approval"}


def test_request_accept_then_chat(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "Alice", errors)
    bob = new_person(browser, server, "Bob", errors)
    try:
        register_and_login(alice)
        register_and_login(bob)
        a, b = alice.page, bob.page
        a.get_by_test_id("tab-contacts").click()
        a.wait_for_url("**/contacts")
        field(a, "add-friend-input").fill(bob.mobile)
        a.get_by_test_id("add-friend-submit").click()
        a.locator(".van-toast", has_text="Friend request sent").wait_for()
        assert a.locator(f'[data-testid="friend-item"][data-user="{bob.id}"]').count() == 0
        # Bob: the request arrives live, with a badge on the contacts tab.
        b.locator('[data-testid="tab-contacts"] .van-badge', has_text="1").wait_for()
        b.get_by_test_id("tab-contacts").click()
        b.locator(f'[data-testid="request-item"][data-user="{alice.id}"]').wait_for()
        b.get_by_test_id("request-accept").click()
        b.locator(f'[data-testid="friend-item"][data-user="{alice.id}"]').wait_for()
        assert b.get_by_test_id("request-item").count() == 0
        # Alice sees Bob as a friend live (cmd 41 accepted), and they chat.
        a.locator(f'[data-testid="friend-item"][data-user="{bob.id}"]').wait_for()
        conv = conv_p(alice, bob)
        open_chat(a, conv)
        send_text(a, "thanks for accepting")
        open_chat(b, conv)
        b.locator('[data-testid="msg-text"]', has_text="thanks for accepting").wait_for()
        # A group with the default policy: joining by id files a request.
        gid = b.evaluate(
            "fetch('/contact/createcommunity', {method: 'POST', credentials: 'same-origin',"
            " headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'team'})})"
            ".then((r) => r.json()).then((j) => j.data.id)"
        )
        a.goto("/groups")
        a.get_by_test_id("join-group").click()
        field(a, "join-group-id").fill(str(gid))
        a.get_by_test_id("join-group-submit").click()
        a.locator(".van-toast", has_text="Join request sent").wait_for()
        assert a.locator(f'[data-testid="group-item"][data-group="{gid}"]').count() == 0
        # Bob blocks Alice: she is gone from his friends, and her next message fails
        # exactly as to a stranger.
        b.goto("/contacts")
        b.locator(f'[data-testid="friend-item"][data-user="{alice.id}"] [data-testid="friend-block"]').click()
        b.locator(".van-dialog__confirm").click()
        b.locator(f'[data-testid="blocked-item"][data-user="{alice.id}"]').wait_for()
        assert b.locator(f'[data-testid="friend-item"][data-user="{alice.id}"]').count() == 0
        open_chat(a, conv)
        a.get_by_test_id("composer-input").fill("are you there?")
        a.get_by_test_id("send").click()
        a.locator('[data-testid="message"][data-state="failed"]', has_text="are you there?").wait_for()
    finally:
        for p in (alice, bob):
            p.context.close()
    assert not errors, errors
