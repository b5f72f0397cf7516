"""The push worker's look-up for a group message: which members have a browser
subscription (issue #21: it used to read all of a large group's member ids). A group of
10,000 members on a real SQLite file, three of them subscribed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, insert

from imhub.store.db import Database
from imhub.store.migrate import migrate
from imhub.store.push import PushStore, Subscription
from imhub.store.social import SocialStore
from imhub.store.tables import communities, members, users
from tests.microbench.conftest import LoopRunner

MEMBERS = 10_000
GROUP = 1


@pytest.fixture(scope="module")
def db(run: LoopRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('microbench-push') / 'imhub.db'}"
    run(migrate(url))
    database = Database(url)

    def seed(conn: Connection) -> None:
        conn.execute(
            insert(users),
            [{"id": i, "mobile": f"139{i:08d}", "passwd": "x", "createat": 0} for i in range(1, MEMBERS + 1)],
        )
        conn.execute(insert(communities), [{"id": GROUP, "name": "big", "ownerid": 1, "createat": 0}])
        conn.execute(insert(members), [{"group_id": GROUP, "user_id": i, "joined": i} for i in range(1, MEMBERS + 1)])

    run(database.write(seed))
    store = PushStore(database)
    for uid in (17, 4_000, 9_999):
        run(store.subscribe(Subscription(uid, f"https://push.example/{uid}", "k", "s"), 1, keep=5))
    try:
        yield database
    finally:
        run(database.dispose())


def test_subscribed_members_of_a_10k_group(benchmark, run: LoopRunner, db: Database) -> None:
    store = PushStore(db)
    subs = benchmark(lambda: run(store.of_group_members(GROUP, but=1)))
    assert sorted(s.user_id for s in subs) == [17, 4_000, 9_999]


def test_all_member_ids_of_a_10k_group(benchmark, run: LoopRunner, db: Database) -> None:
    """What a group message's push look-up cost before (then a presence check each)."""
    social = SocialStore(db)
    ids = benchmark(lambda: run(social.member_ids(GROUP)))
    assert len(ids) == MEMBERS
