"""The SQLite append transaction (the path of every chat message) and the token
check of every handshake and API call, through the stores' public APIs on a real
SQLite file (WAL, the writer and reader threads of :class:`Database`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from imhub.config import Settings
from imhub.domain.model import Cmd, Draft, Message
from imhub.services.accounts import AccountService
from imhub.store.db import Database
from imhub.store.messages import MessageStore
from imhub.store.migrate import migrate
from imhub.store.users import UserStore, token_hash
from tests.microbench.conftest import LoopRunner

TOKEN = "k3v-2mZs0b1qg8rW9xYtLp4uN7cE5aHdJ6fQ_iOoSe"


@pytest.fixture(scope="module")
def db(run: LoopRunner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('microbench') / 'imhub.db'}"
    run(migrate(url))
    database = Database(url)
    try:
        yield database
    finally:
        run(database.dispose())


_cids = itertools.count(1)


@pytest.fixture(scope="module")
def people(run: LoopRunner, db: Database) -> list[tuple[int, int]]:
    """Ten (sender, recipient) pairs of stored users (messages reference users)."""
    users = UserStore(db)
    ids = [run(users.create(mobile=f"1380000{i:04d}", passwd_hash="not-a-real-hash")).id for i in range(20)]
    return list(zip(ids[:10], ids[10:], strict=True))


def _drafts(n: int, pairs: list[tuple[int, int]]) -> list[Draft]:
    """``n`` 1:1 drafts with fresh cids, round-robin over ``pairs`` (a batch under load
    mixes many senders and conversations)."""
    return [
        Draft(userid=pairs[i % len(pairs)][0], cmd=Cmd.PRIVATE, dstid=pairs[i % len(pairs)][1], media=1,
              content=f"message {i}: hello there, how are you?", cid=f"mb-{next(_cids)}")
        for i in range(n)
    ]


def _check_batch(drafts: list[Draft], stored: list[tuple[Message, bool]]) -> None:
    assert len(stored) == len(drafts)
    assert not any(dup for _, dup in stored)
    by_conv: dict[str, list[int]] = {}
    for d, (m, _) in zip(drafts, stored, strict=True):
        assert (m.userid, m.cid, m.conv, m.content) == (d.userid, d.cid, d.conv, d.content) and m.id > 0
        by_conv.setdefault(m.conv, []).append(m.seq)
    for seqs in by_conv.values():  # gapless and increasing within the batch
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


@pytest.mark.parametrize(("size", "convs"), [(1, 1), (100, 10)], ids=["1-message", "100-messages-10-convs"])
def test_sqlite_append_batch(benchmark, run: LoopRunner, db: Database, people: list[tuple[int, int]], size: int,
                             convs: int) -> None:
    store = MessageStore(db)
    checked: list[tuple[list[Draft], list[tuple[Message, bool]]]] = []

    def append(drafts: list[Draft]) -> None:
        checked.append((drafts, run(store.append_batch(drafts))))

    benchmark.pedantic(append, setup=lambda: ((_drafts(size, people[:convs]),), {}), rounds=200 if size == 1 else 30,
                       warmup_rounds=2)
    for drafts, stored in checked:
        _check_batch(drafts, stored)
    # A resend of the last batch is recognised: same messages, flagged duplicate.
    drafts, stored = checked[-1]
    again = run(store.append_batch(drafts))
    assert [(m.id, dup) for m, dup in again] == [(m.id, True) for m, _ in stored]


@pytest.fixture(scope="module")
def user_with_token(run: LoopRunner, db: Database) -> int:
    users = UserStore(db)
    row = run(users.create(mobile="13900000001", passwd_hash="not-a-real-hash"))
    run(users.add_token(row.id, TOKEN, 3600))
    return row.id


def test_token_hash(benchmark) -> None:
    digest = benchmark(token_hash, TOKEN)
    assert len(digest) == 64 and int(digest, 16) >= 0 and digest == token_hash(TOKEN)


def test_token_lookup_in_store(benchmark, run: LoopRunner, db: Database, user_with_token: int) -> None:
    users = UserStore(db)
    assert benchmark(lambda: run(users.user_for_token(TOKEN))) == user_with_token
    assert run(users.user_for_token(TOKEN + "x")) is None


def test_authenticate(benchmark, run: LoopRunner, db: Database, user_with_token: int, tmp_path: Path) -> None:
    """The handshake's check: AccountService.authenticate (hash, then lookup)."""
    accounts = AccountService(Settings(data_dir=tmp_path), UserStore(db))
    assert benchmark(lambda: run(accounts.authenticate(TOKEN))) == user_with_token
    assert run(accounts.authenticate("")) is None and run(accounts.authenticate("no-such-token")) is None
