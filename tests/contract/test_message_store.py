"""MessageStore contract (seq allocation, idempotency, cursors) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from imhub.domain.model import Draft
from imhub.domain.ngrams import query_phrases
from imhub.store.db import Database
from imhub.store.messages import FLUSH_CHUNK, MessageStore
from imhub.store.users import UserStore


@pytest.fixture
async def env(db_url: str):
    db = Database(db_url)
    users = UserStore(db)
    ids = [(await users.create(mobile=f"1380000000{i}", passwd_hash="h")).id for i in range(3)]
    yield MessageStore(db), ids
    await db.dispose()


def text(a: int, b: int, content: str, cid: str | None = None) -> Draft:
    return Draft(userid=a, cmd=10, dstid=b, media=1, content=content, cid=cid)


async def test_seq_is_gapless_per_conversation(env) -> None:
    store, (a, b, c) = env
    res = await store.append_batch([text(a, b, "1"), text(b, a, "2"), text(a, c, "x"), text(a, b, "3")])
    assert [(m.conv, m.seq) for m, _ in res] == [
        (f"p{a}_{b}", 1), (f"p{a}_{b}", 2), (f"p{a}_{c}", 1), (f"p{a}_{b}", 3)
    ]
    res2 = await store.append_batch([text(b, a, "4")])
    assert res2[0][0].seq == 4 and not res2[0][1]
    assert [m.content for m in await store.after(f"p{a}_{b}", 1, 10)] == ["2", "3", "4"]
    assert (await store.last_seqs([f"p{a}_{b}", f"p{a}_{c}", "p98_99"])) == {f"p{a}_{b}": 4, f"p{a}_{c}": 1}


async def test_same_cid_is_stored_once(env) -> None:
    store, (a, b, _) = env
    first = await store.append_batch([text(a, b, "hi", cid="c1")])
    again = await store.append_batch([text(a, b, "hi (resent)", cid="c1"), text(a, b, "other", cid="c2")])
    assert again[0] == (first[0][0], True)
    assert again[1][0].seq == 2 and not again[1][1]
    in_batch = await store.append_batch([text(a, b, "x", cid="c3"), text(a, b, "x", cid="c3")])
    assert in_batch[0][0] == in_batch[1][0] and in_batch[1][1] and not in_batch[0][1]
    # Another sender may reuse the same cid string: cids are per sender.
    other = await store.append_batch([text(b, a, "y", cid="c1")])
    assert not other[0][1]
    assert len(await store.after(f"p{a}_{b}", 0, 100)) == 4


async def test_concurrent_batches_keep_seq_gapless(env) -> None:
    store, (a, b, _) = env
    batches = [[text(a, b, f"{i}-{j}") for j in range(5)] for i in range(8)]
    await asyncio.gather(*(store.append_batch(batch) for batch in batches))
    seqs = [m.seq for m in await store.after(f"p{a}_{b}", 0, 1000)]
    assert seqs == list(range(1, 41))


async def test_delivered_cursor_only_rises(env) -> None:
    store, (a, b, _) = env
    conv = f"p{a}_{b}"
    await store.advance_delivered([(a, conv, 5)])
    await store.advance_delivered([(a, conv, 3), (b, conv, 2)])
    assert (await store.cursors_of(a))[conv] == (5, 0)
    assert (await store.cursors_of(b))[conv] == (2, 0)
    await store.advance_delivered([(b, conv, 4), (b, conv, 3)])  # one row twice: the highest wins
    assert (await store.cursors_of(b))[conv] == (4, 0)


async def test_a_large_cursor_flush_is_applied_whole(env) -> None:
    store, (a, _, _) = env
    marks = [(a, f"g{i}", i + 1) for i in range(2 * FLUSH_CHUNK + 3)]
    await store.advance_delivered(reversed(marks))
    assert await store.cursors_of(a) == {c: (s, 0) for _, c, s in marks}


async def test_start_cursor_at_conversation_end(env) -> None:
    store, (a, _, c) = env
    await store.append_batch([Draft(userid=a, cmd=11, dstid=9, media=1, content=str(i)) for i in range(3)])
    await store.start_cursor(c, "g9")
    assert (await store.cursors_of(c))["g9"] == (3, 3)


async def test_history_before(env) -> None:
    store, (a, b, _) = env
    await store.append_batch([text(a, b, str(i)) for i in range(1, 8)])
    conv = f"p{a}_{b}"
    assert [m.seq for m in await store.before(conv, 6, 3)] == [3, 4, 5]
    assert [m.seq for m in await store.before(conv, 2, 10)] == [1]
    assert await store.before(conv, 1, 10) == []


async def test_read_cursor_rises_and_lifts_delivered(env) -> None:
    store, (a, b, _) = env
    conv = f"p{a}_{b}"
    assert await store.advance_read(a, conv, 4) == (4, 4)
    assert await store.advance_read(a, conv, 2) == (4, 4)
    await store.advance_delivered([(a, conv, 9)])
    assert await store.advance_read(a, conv, 6) == (9, 6)
    assert (await store.cursors_in(conv)) == {a: (9, 6)}


async def test_search_finds_chinese_substrings_in_given_conversations(env) -> None:
    store, (a, b, c) = env
    res = await store.append_batch(
        [
            text(a, b, "今天天气很好"),
            text(b, a, "Hello World, 明天见"),
            text(a, c, "天气预报说下雨"),
            Draft(userid=a, cmd=10, dstid=b, media=4, url="/mnt/x.jpg", content="天气"),  # image: not indexed
        ]
    )
    ab, ac = f"p{a}_{b}", f"p{a}_{c}"
    ids = {m.content: m.id for m, _ in res}

    async def find(q: str, convs: list[str]) -> list[str]:
        return [m.content for m in await store.search(convs, query_phrases(q), 2**62, 20)]

    assert await find("天气", [ab, ac]) == ["天气预报说下雨", "今天天气很好"]
    assert await find("天气", [ab]) == ["今天天气很好"]
    assert await find("很好", [ab]) == ["今天天气很好"]
    assert await find("好", [ab]) == ["今天天气很好"]
    assert await find("天气很", [ab]) == ["今天天气很好"]
    assert await find("气天", [ab]) == []
    assert await find("hello 明天", [ab]) == ["Hello World, 明天见"]
    assert await find('world" OR "x', [ab]) == []  # quotes and operators are just text
    assert await find("hel wor", [ab]) == ["Hello World, 明天见"]  # English words match as prefixes
    assert await find("ello", [ab]) == []  # … from their start
    assert await find("helloo", [ab]) == []
    assert [m.content for m in await store.search([ab, ac], query_phrases("天气"), ids["天气预报说下雨"], 20)] == [
        "今天天气很好"
    ]
    await store.recall(ids["今天天气很好"])
    assert await find("天气", [ab]) == []
    recalled = await store.get(ids["今天天气很好"])
    assert recalled is not None and recalled.recalled and recalled.content == ""


async def test_an_append_returns_what_it_stored(env) -> None:
    """Several conversations interleaved in one batch, every field given: the messages
    the append returns are the stored rows, ids in batch order; the senders' cursors and
    the search index moved with them."""
    store, (a, b, c) = env
    ab, ac = f"p{a}_{b}", f"p{a}_{c}"
    drafts = [
        text(a, b, "first light"),
        Draft(userid=b, cmd=10, dstid=a, media=1, content="a reply", cid="k2", reply_to=7, forwarded=True),
        Draft(userid=a, cmd=10, dstid=c, media=2, content="news", memo="evening tide", amount=3, url="u", pic="p"),
        Draft(userid=a, cmd=10, dstid=b, media=4, pic="https://x/p.png", cid="k4"),
    ]
    res = await store.append_batch(drafts)
    returned = [m for m, dup in res if not dup]
    assert [(m.conv, m.seq) for m in returned] == [(ab, 1), (ab, 2), (ac, 1), (ab, 3)]
    assert [m.id for m in returned] == sorted(m.id for m in returned)
    assert await store.get_many([m.id for m in returned]) == returned
    assert (await store.cursors_of(a))[ab] == (3, 3) and (await store.cursors_of(a))[ac] == (1, 1)
    assert (await store.cursors_of(b))[ab] == (2, 2)
    found = await store.search([ab, ac], query_phrases("tide"), 2**62, 20)
    assert [m.id for m in found] == [returned[2].id]
    assert await store.search([ab], query_phrases("https"), 2**62, 20) == []  # an image is not text


async def test_settled_seqs_of_several_conversations_in_one_read(env) -> None:
    """The sequencer's baselines: per conversation the highest seq stored before the
    cut-off, 0 for none; read together in one statement (perf7-loss.md)."""
    store, (a, b, c) = env
    res = await store.append_batch([text(a, b, "1"), text(a, b, "2"), text(a, c, "x")])
    ab, ac = f"p{a}_{b}", f"p{a}_{c}"
    await store.append_batch([text(a, b, "3")])
    later = max(m.ts for m, _ in res) + 10**9
    first = min(m.ts for m, _ in res)
    assert await store.settled_seqs([(ab, later), (ac, later), ("p98_99", later)]) == {ab: 3, ac: 1, "p98_99": 0}
    assert await store.settled_seqs([(ab, first), (ac, later)]) == {ab: 0, ac: 1}  # each its own cut-off
    assert await store.settled_seqs([]) == {}
