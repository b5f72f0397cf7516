"""A walk through every view of the web client (issue #18): two friends, a private chat,
a group both are in, a search. The language, accessibility and desktop tests run their
checks on each view of the same walk."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from tests.e2e.conftest import ROOT
from tests.e2e.test_group_admin import create_group
from tests.e2e.test_web_client import (
    Person,
    add_friend,
    conv_p,
    field,
    new_person,
    open_chat,
    register_and_login,
    send_text,
    wait_online,
)

PHONE = {"width": 390, "height": 780}
DESKTOP = {"width": 1280, "height": 800}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
# User content in each language, so that anything of the other language on a screen is
# the app's own text.
CONTENT = {
    "en": {"owner": "Ann", "friend": "Bo", "group": "Reading club", "hello": "Hello there", "reply": "Nice to see you"},
    "zh": {"owner": "小明", "friend": "小红", "group": "读书会", "hello": "你好呀", "reply": "好久不见"},
}


@dataclass
class World:
    lang: str
    owner: Person
    friend: Person
    gid: int
    conv: str
    browser: Any
    base: str

    def close(self) -> None:
        self.owner.context.close()
        self.friend.context.close()


def build_world(browser: Any, base: str, lang: str, errors: list[str], viewport: dict[str, int] | None = None) -> World:
    words = CONTENT[lang]
    locale = LOCALES[lang]
    owner = new_person(browser, base, words["owner"], errors, locale=locale, viewport=viewport or PHONE)
    friend = new_person(browser, base, words["friend"], errors, locale=locale, viewport=PHONE)
    register_and_login(owner)
    register_and_login(friend)
    add_friend(owner, friend)
    conv = conv_p(owner, friend)
    open_chat(owner.page, conv)
    send_text(owner.page, words["hello"])
    open_chat(friend.page, conv)
    send_text(friend.page, words["reply"])
    gid = create_group(owner, words["group"])
    fp = friend.page
    fp.goto("/groups")
    fp.get_by_test_id("join-group").click()
    field(fp, "join-group-id").fill(str(gid))
    fp.get_by_test_id("join-group-submit").click()
    fp.wait_for_url(f"**/groups/{gid}")
    open_chat(owner.page, f"g{gid}")
    send_text(owner.page, words["hello"])
    return World(lang=lang, owner=owner, friend=friend, gid=gid, conv=conv, browser=browser, base=base)


def guest_page(w: World, viewport: dict[str, int], errors: list[str]) -> Person:
    """A logged-out visitor in the world's language (the login and register views)."""
    return new_person(w.browser, w.base, "guest", errors, locale=LOCALES[w.lang], viewport=viewport)


def settle(page: Any) -> None:
    """Wait until nothing moves: toasts gone, transitions over."""
    page.wait_for_function("() => !document.querySelector('.van-toast:not([style*=\"display: none\"])')")
    page.wait_for_timeout(350)


def guest_views(page: Any) -> Iterator[str]:
    page.goto("/login")
    page.get_by_test_id("login-submit").wait_for()
    settle(page)
    yield "login"
    page.goto("/register")
    page.get_by_test_id("reg-submit").wait_for()
    settle(page)
    yield "register"


def user_views(w: World, page: Any) -> Iterator[str]:
    """Opens each view of a logged-in user in ``page`` and yields its name when shown."""
    steps: list[tuple[str, str, str]] = [
        ("chats", "/chats", '[data-testid="conv-item"]'),
        ("chat", f"/chat/{w.conv}", '[data-testid="message"]'),
        ("group-chat", f"/chat/g{w.gid}", '[data-testid="event-line"]'),
        ("contacts", "/contacts", '[data-testid="friend-item"]'),
        ("groups", "/groups", '[data-testid="group-item"]'),
        ("group", f"/groups/{w.gid}", '[data-testid="member"]'),
        ("group-settings", f"/groups/{w.gid}/settings", '[data-testid="manage-member"]'),
        ("me", "/me", '[data-testid="me-name"]'),
    ]
    for name, path, ready in steps:
        page.goto(path)
        if page.get_by_test_id("connection-state").count():
            wait_online(page)
        page.locator(ready).first.wait_for()
        settle(page)
        yield name
    page.goto("/chat/search")
    wait_online(page)
    field(page, "search-input").fill(CONTENT[w.lang]["hello"])
    field(page, "search-input").press("Enter")
    page.get_by_test_id("search-hit").first.wait_for()
    settle(page)
    yield "search"


# ---- the dictionaries of frontend/src/lib/i18n.js ---------------------------------------

@cache
def dictionary(lang: str) -> dict[str, str]:
    src = (ROOT / "frontend" / "src" / "lib" / "i18n.js").read_text()
    body = src.split(f"const {lang} = {{", 1)[1].split("\n}\n", 1)[0]
    out: dict[str, str] = {}
    for key, single, double in re.findall(r"(\w+): (?:'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\")", body):
        out[key] = single or double
    return out


CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# Vant's own English texts (its en-US locale) that the app shows.
VANT_EN = {"Confirm", "Cancel", "Loading", "Delete"}


@cache
def english_words() -> frozenset[str]:
    """Words of the English UI that the Chinese one never shows (e.g. not "ID", "imhub")."""
    def words(s: str) -> set[str]:
        return set(re.findall(r"[A-Za-z]{3,}", re.sub(r"\{\w+\}", " ", s)))

    en = set().union(*(words(v) for v in dictionary("en").values()), VANT_EN)
    zh = {w.lower() for v in dictionary("zh").values() for w in words(v)}
    return frozenset(w for w in en if w.lower() not in zh)


SHOWN_TEXT = """() => {
  const out = [document.body.innerText]
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], img[alt]')) {
    for (const a of ['aria-label', 'placeholder', 'title', 'alt']) {
      const v = el.getAttribute(a)
      if (v) out.push(v)
    }
  }
  return out.join('\\n')
}"""


def other_language(page: Any, lang: str) -> list[str]:
    """What of the other language the page shows (its text, labels, placeholders)."""
    text = page.evaluate(SHOWN_TEXT)
    if lang == "en":
        return sorted({line.strip() for line in text.splitlines() if CJK.search(line)})
    found = {w for w in english_words() if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
    return sorted(found)


def each_view(w: World, viewport: dict[str, int], errors: list[str], check: Callable[[Any, str], None]) -> None:
    """Run ``check(page, view)`` on every view, logged out and in, at ``viewport``."""
    guest = guest_page(w, viewport, errors)
    try:
        for view in guest_views(guest.page):
            check(guest.page, view)
    finally:
        guest.context.close()
    page = w.owner.page
    page.set_viewport_size(viewport)
    for view in user_views(w, page):
        check(page, view)
