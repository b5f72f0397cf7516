"""Setup steps the web-client e2e tests share: people registered and logged in, each
in their own browser context, and a group among them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.test_web_client import Person, add_friend, new_person, register_and_login

# Creates a group (gid 0) as the page's user, or joins group `gid`; answers the gid.
GROUP_API = """async ([me, gid]) => {
  const post = async (path, body) => (await fetch(path, { method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json()
  if (!gid) return (await post('/contact/createcommunity', { name: 'team' })).data.id
  await post('/contact/joincommunity', { userid: me, dstid: gid })
  return gid
}"""


@contextmanager
def logged_in(
    browser: Any, server: str, names: list[str], errors: list[str], *,
    viewport: dict[str, int] | None = None, befriend: bool = False,
) -> Iterator[list[Person]]:
    """A person per name (their own browser context), each registered and logged in;
    with ``befriend`` the first adds every other one as a friend. On leaving, the
    contexts of everyone in the list are closed (a test may append more people)."""
    people = [new_person(browser, server, name, errors, viewport=viewport) for name in names]
    try:
        for p in people:
            register_and_login(p)
        if befriend:
            for p in people[1:]:
                add_friend(people[0], p)
        yield people
    finally:
        for p in people:
            p.context.close()


def new_group(owner: Person, *members: Person) -> int:
    """A group created by ``owner`` that ``members`` join: its id."""
    gid: int = owner.page.evaluate(GROUP_API, [owner.id, 0])
    for p in members:
        p.page.evaluate(GROUP_API, [p.id, gid])
    return gid
