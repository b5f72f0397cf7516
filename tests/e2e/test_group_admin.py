"""Group administration in a real Chromium against ``imhub serve`` with the default
group policies (``approval`` + ``joined``): an owner creates a group, chats, makes an
invite link and copies it; another user opens the link, joins, and sees only what was
sent after the join, then a new message live. A logged-out visitor of the link logs in
and comes back to it. A member without a role is offered no administration; a join
request reaches the owner's settings page live (cmd 42)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_web_client import (
    VIEWPORT,
    Person,
    field,
    new_person,
    open_chat,
    register_and_login,
    send_text,
    shot,
    texts,
)

pytestmark = pytest.mark.slow

SERVER_ENV = {"IMHUB_FRIEND_POLICY": "request", "IMHUB_GROUP_JOIN_POLICY": "approval"}
DESKTOP = {"width": 1280, "height": 800}


def create_group(p: Person, name: str) -> int:
    page = p.page
    page.goto("/groups")
    page.get_by_test_id("create-group").click()
    field(page, "group-name").fill(name)
    page.get_by_test_id("group-create-submit").click()
    page.wait_for_url("**/groups/*")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def open_settings(page: Any, gid: int) -> None:
    page.goto(f"/groups/{gid}")
    page.get_by_test_id("group-settings").click()
    page.wait_for_url(f"**/groups/{gid}/settings")


def test_invite_link_join_sees_only_later_messages(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "Alice", errors)
    bob = new_person(browser, server, "Bob", errors)
    carol = new_person(browser, server, "Carol", errors)
    try:
        register_and_login(alice)
        register_and_login(bob)
        a, b = alice.page, bob.page
        gid = create_group(alice, "reading club")
        open_chat(a, f"g{gid}")
        for text in ("before the link", "still before"):
            send_text(a, text)
        # The owner sees the defaults and makes an invite link with a copy button.
        open_settings(a, gid)
        a.locator('[data-testid="join-policy"] [data-policy="approval"] .van-radio__icon--checked').wait_for()
        a.locator('[data-testid="history-visibility"] [data-visibility="joined"] .van-radio__icon--checked').wait_for()
        a.get_by_test_id("create-invite").click()
        url = field(a, "invite-url").input_value()
        assert url.startswith(server + "/join/") and len(url) > len(server) + 30
        alice.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
        a.get_by_test_id("copy-invite").click()
        a.locator(".van-toast", has_text="Copied").wait_for()
        assert a.evaluate("navigator.clipboard.readText()") == url
        a.locator('[data-testid="invite"]').first.wait_for()
        # Bob opens the link: the group is shown before he joins; joining opens the chat.
        b.goto(urlsplit(url).path)
        assert b.get_by_test_id("join-group-name").inner_text() == "reading club"
        b.get_by_test_id("join-submit").click()
        b.wait_for_url(f"**/chat/g{gid}")
        b.get_by_test_id("messages").wait_for()
        open_chat(a, f"g{gid}")
        send_text(a, "welcome aboard")
        b.locator('[data-testid="msg-text"]', has_text="welcome aboard").wait_for()  # live
        shown = texts(b)
        assert "welcome aboard" in shown
        assert not any("before" in t for t in shown), shown  # history visibility `joined`
        # Reloaded (history from the server, not just the live frame): still nothing earlier.
        open_chat(b, f"g{gid}")
        b.locator('[data-testid="msg-text"]', has_text="welcome aboard").wait_for()
        assert not any("before" in t for t in texts(b)), texts(b)
        # A logged-out visitor of the link logs in first and comes back to it.
        # She has no account yet: signing up on the way keeps the link.
        c = carol.page
        c.goto(urlsplit(url).path)
        c.wait_for_url(re.compile(r"/login\?next=/join/"))  # a glob's ? is one character
        c.get_by_test_id("to-register").click()
        field(c, "reg-mobile").fill(carol.mobile)
        field(c, "reg-passwd").fill(carol.passwd)
        field(c, "reg-nickname").fill("Carol")
        c.get_by_test_id("reg-submit").click()
        c.wait_for_url(re.compile(r"/login\?.*next=%2Fjoin%2F|/login\?.*next=/join/"))
        field(c, "login-passwd").fill(carol.passwd)
        c.get_by_test_id("login-submit").click()
        c.wait_for_url("**/join/*")
        c.get_by_test_id("join-submit").click()
        c.wait_for_url(f"**/chat/g{gid}")
        b.goto(urlsplit(url).path)
        b.get_by_test_id("join-open").wait_for()  # a member is offered the chat, not a join
        assert b.get_by_test_id("join-submit").count() == 0
        # The owner revokes the link: it stops working, and says so in words.
        open_settings(a, gid)
        a.get_by_test_id("revoke-invite").first.click()
        a.locator(".van-dialog__confirm").click()
        a.locator(".van-toast", has_text="Revoked").wait_for()
        dave = new_person(browser, server, "Dave", errors)
        try:
            register_and_login(dave)
            dave.page.goto(urlsplit(url).path)
            problem = dave.page.get_by_test_id("join-problem")
            problem.wait_for()
            assert problem.inner_text() == "This invite link was revoked"
            assert dave.page.get_by_test_id("join-submit").count() == 0
        finally:
            dave.context.close()
    finally:
        for p in (alice, bob, carol):
            p.context.close()
    assert not errors, errors


def test_member_without_role_sees_no_settings_actions(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "Alice", errors)
    bob = new_person(browser, server, "Bob", errors)
    try:
        register_and_login(alice)
        register_and_login(bob)
        a, b = alice.page, bob.page
        gid = create_group(alice, "garden")
        open_settings(a, gid)
        a.get_by_test_id("join-requests").wait_for()
        assert a.get_by_test_id("join-request").count() == 0
        # Bob asks to join by id: the request appears live on the owner's page (cmd 42).
        b.goto("/groups")
        b.get_by_test_id("join-group").click()
        field(b, "join-group-id").fill(str(gid))
        b.get_by_test_id("join-group-submit").click()
        b.locator(".van-toast", has_text="Join request sent").wait_for()
        req = a.locator(f'[data-testid="join-request"][data-user="{bob.id}"]')
        req.wait_for()
        a.get_by_test_id("create-invite").click()
        field(a, "invite-url").wait_for()
        a.locator(".van-toast").last.wait_for(state="hidden")
        shot(a, "group-settings-phone")
        a.set_viewport_size(DESKTOP)
        shot(a, "group-settings-desktop")
        a.set_viewport_size(VIEWPORT)
        req.get_by_test_id("approve").click()
        member = a.locator(f'[data-testid="manage-member"][data-user="{bob.id}"]')
        member.get_by_test_id("make-admin").wait_for()
        req.wait_for(state="detached")  # requests and members reload side by side
        assert a.get_by_test_id("join-request").count() == 0
        # Bob, a plain member: no settings entry, no removable members, and the settings
        # page itself offers nothing.
        b.goto(f"/groups/{gid}")
        b.get_by_test_id("member").first.wait_for()
        b.locator(f'[data-testid="member"][data-user="{alice.id}"]').wait_for()
        assert b.get_by_test_id("group-settings").count() == 0
        assert b.locator(".member.removable").count() == 0
        b.goto(f"/groups/{gid}/settings")
        b.locator(".van-nav-bar__title", has_text="Group settings").wait_for()
        for testid in ("join-policy", "history-visibility", "join-requests", "invite-links", "manage-members", "bans",
                       "approve", "make-admin", "remove-member", "create-invite"):
            assert b.get_by_test_id(testid).count() == 0, testid
        # Made an admin, Bob may answer requests and manage links but not the owner's settings.
        member.get_by_test_id("make-admin").click()
        member.get_by_test_id("remove-admin").wait_for()
        b.goto(f"/groups/{gid}")
        b.get_by_test_id("group-settings").click()
        b.get_by_test_id("invite-links").wait_for()
        b.get_by_test_id("join-requests").wait_for()
        assert b.get_by_test_id("join-policy").count() == 0
        assert b.get_by_test_id("history-visibility").count() == 0
        assert b.get_by_test_id("make-admin").count() == 0
        # The owner is listed but cannot be removed by an admin.
        owner_row = b.locator(f'[data-testid="manage-member"][data-user="{alice.id}"]')
        owner_row.wait_for()
        assert owner_row.get_by_test_id("remove-member").count() == 0
        # The owner tightens the policy (kept after a reload), removes Bob (banned until
        # unbanned) and lifts the ban.
        a.locator('[data-testid="join-policy"] [data-policy="invite"]').click()
        a.locator(".van-toast", has_text="Settings saved").wait_for()
        a.reload()
        a.locator('[data-testid="join-policy"] [data-policy="invite"] .van-radio__icon--checked').wait_for()
        member.get_by_test_id("remove-member").click()
        a.locator(".van-dialog__confirm").click()
        a.locator(f'[data-testid="ban"][data-user="{bob.id}"]').wait_for()
        assert member.count() == 0
        ban = a.locator(f'[data-testid="ban"][data-user="{bob.id}"]')
        ban.get_by_test_id("unban").click()
        a.locator(".van-toast", has_text="Ban lifted").wait_for()
        ban.wait_for(state="detached")  # the list reloads after the toast
        assert a.get_by_test_id("ban").count() == 0
    finally:
        for p in (alice, bob):
            p.context.close()
    assert not errors, errors
