"""Issue #18 bug 3: mobile numbers in the web client follow the server's rule (an
optional leading + and 5-20 digits, imhub/services/accounts.py MOBILE_RE) after the
separators people type (spaces, dashes, dots, parentheses) are dropped: a 6-digit
mobile is found (it was taken for a user id), `+86 139 …` registers and is found,
and a short number is still a user id."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from imhub.services.accounts import MOBILE_RE
from tests.e2e.conftest import ROOT
from tests.e2e.test_web_client import add_friend, field, new_person, register_and_login


def test_client_mobile_rule_is_the_servers() -> None:
    source = (ROOT / "frontend" / "src" / "lib" / "mobile.js").read_text()
    found = re.search(r"export const MOBILE_RE = /(.+)/\n", source)
    assert found, "frontend/src/lib/mobile.js must export MOBILE_RE as a regex literal"
    assert found.group(1) == MOBILE_RE.pattern


def spaced(digits: str) -> str:
    """`13912345678` as people write it: `139 1234 5678`."""
    return f"{digits[:3]} {digits[3:7]} {digits[7:]}"


@pytest.mark.slow
def test_six_digit_spaced_and_plus86_mobiles(server: str, browser: Any) -> None:
    errors: list[str] = []
    gail = new_person(browser, server, "Gail", errors)
    gail.mobile = str(random.randint(100_000, 999_999))  # 6 digits: valid on the server
    hank = new_person(browser, server, "Hank", errors)
    ivy = new_person(browser, server, "Ivy", errors)
    national = "139" + str(random.randint(10_000_000, 99_999_999))
    try:
        register_and_login(gail)
        register_and_login(hank)

        # Ivy types her number the way it is printed, with the country code.
        page = ivy.page
        page.goto("/user/register.shtml")
        field(page, "reg-mobile").fill(f"+86 {spaced(national)}")
        field(page, "reg-passwd").fill(ivy.passwd)
        field(page, "reg-nickname").fill(ivy.name)
        page.get_by_test_id("reg-submit").click()
        page.wait_for_url("**/login?mobile=*")
        assert field(page, "login-mobile").input_value() == f"+86{national}"
        field(page, "login-mobile").fill(f"+86-{national[:3]}-{national[3:7]}-{national[7:]}")
        field(page, "login-passwd").fill(ivy.passwd)
        page.get_by_test_id("login-submit").click()
        page.wait_for_url("**/chats")
        ivy.id = int(page.evaluate("JSON.parse(localStorage.getItem('imhub.session')).id"))

        add_friend(hank, gail)  # by the 6-digit mobile, exactly as typed
        ivy.mobile = f"+86 ({national[:3]}) {national[3:7]} {national[7:]}"
        add_friend(hank, ivy)
        assert hank.page.locator('[data-testid="friend-item"]').count() == 2

        # A number shorter than any mobile is a user id.
        ivy.mobile = str(hank.id)
        add_friend(ivy, hank)
    finally:
        for p in (gail, hank, ivy):
            p.context.close()
    assert not errors, errors
