"""Search (issue #18 item 7), over the WebSocket (cmd 27 → 39) and HTTP
(/message/search), on SQLite and PostgreSQL:

- English words match as prefixes ("meet" finds "Meeting");
- every hit carries ``snippet`` (the text around the first match, "…" where cut) and
  ``marks`` (where the query matches in the snippet, UTF-16 offsets as JavaScript
  indexes strings);
- the first page also lists the caller's own friends (by nickname, or by mobile when
  that friend shows it to friends) and groups (by name) that match — never a stranger,
  and never by the mobile of a friend who keeps it private."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imhub.config import Settings
from tests.integration.chatkit import api, befriend, connect, make_group, make_user


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


def marked(hit: dict[str, Any]) -> list[str]:
    """The marked parts of a hit's snippet (offsets are UTF-16 code units)."""
    units = hit["snippet"].encode("utf-16-le")
    return [units[2 * s : 2 * e].decode("utf-16-le") for s, e in hit["marks"]]


LONG = (
    "Some context first: the weekly report is almost done, the numbers look fine and the "
    "budget is on track 🎉🎉. The Meeting moves to Thursday at ten, please bring the slides. "
    "After that, lunch downstairs and the rest of the afternoon is free for everyone who wants it."
)


async def test_prefix_match_snippet_and_marks(client) -> None:
    a, b = await make_user(client, "Ann"), await make_user(client, "Ben")
    await befriend(client, a, b)
    sa = await connect(client, a)
    for i, text in enumerate([LONG, "meetings all day", "we met yesterday", "明天下午开会，记得带电脑"]):
        await sa.send(cmd=10, dstid=b.id, media=1, content=text, cid=f"s{i}")
        assert (await sa.reply())["cmd"] == 1

    await sa.send(cmd=27, rid="q1", q="meet")
    res = await sa.recv_until(lambda f: f["cmd"] == 39)
    assert [h["content"] for h in res["hits"]] == ["meetings all day", LONG]
    short, long = res["hits"]
    assert short["snippet"] == "meetings all day" and marked(short) == ["meet"] and short["marks"] == [[0, 4]]
    # The long text is cut before and after, the match near the start of the snippet.
    assert long["snippet"].startswith("…") and long["snippet"].endswith("…")
    assert marked(long) == ["Meet"]
    assert "🎉" in long["snippet"]  # two UTF-16 units each: the offsets count them so
    assert long["marks"][0][0] < 40 and len(long["snippet"]) < len(LONG)

    await sa.send(cmd=27, rid="q2", q="开会 电脑")
    res = await sa.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "q2")
    (hit,) = res["hits"]
    assert hit["snippet"] == "明天下午开会，记得带电脑" and marked(hit) == ["开会", "电脑"]

    found = await api(client, "/message/search", b, q="MEETING thurs")
    assert [m["content"] for m in found["rows"]] == [LONG]
    assert {m.lower() for m in marked(found["rows"][0])} == {"meeting", "thurs"}
    assert (await api(client, "/message/search", b, q="meetingsx"))["rows"] == []


async def test_friends_and_groups_in_the_first_page(client) -> None:
    me = await make_user(client, "Me")
    meena = await make_user(client, "Meena Shah")  # a friend who shows her mobile
    private = await make_user(client, "Carl")  # a friend who does not
    stranger = await make_user(client, "Meera Stranger")
    await befriend(client, me, meena)
    await befriend(client, me, private)
    assert (await api(client, "/user/privacy", meena, showmobile=1))["code"] == 0
    mine = await make_group(client, me, name="Meetup crew")
    await make_group(client, stranger, name="Meetings of strangers")
    sock = await connect(client, me)
    await sock.send(cmd=10, dstid=meena.id, media=1, content="meet at noon?", cid="m1")
    await sock.reply()

    await sock.send(cmd=27, rid="c1", q="mee")
    res = await sock.recv_until(lambda f: f["cmd"] == 39)
    assert [u["id"] for u in res["users"]] == [meena.id]
    assert res["users"][0]["nickname"] == "Meena Shah" and res["users"][0]["mobile"] == meena.mobile
    assert [g["id"] for g in res["groups"]] == [mine] and res["groups"][0]["name"] == "Meetup crew"
    assert [h["content"] for h in res["hits"]] == ["meet at noon?"]

    # By mobile: only the friend who shows hers; Carl's number stays private.
    await sock.send(cmd=27, rid="c2", q=meena.mobile[-6:])
    res = await sock.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "c2")
    assert [u["id"] for u in res["users"]] == [meena.id]
    await sock.send(cmd=27, rid="c3", q=private.mobile)
    res = await sock.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "c3")
    assert res["users"] == []
    await sock.send(cmd=27, rid="c4", q="carl")
    res = await sock.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "c4")
    assert [u["id"] for u in res["users"]] == [private.id] and res["users"][0]["mobile"] == ""
    # A stranger's name or mobile finds nobody.
    await sock.send(cmd=27, rid="c5", q="stranger")
    res = await sock.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "c5")
    assert res["users"] == [] and res["groups"] == []

    # Next pages carry messages only; HTTP says the same as the socket.
    await sock.send(cmd=27, rid="c6", q="mee", before=2**40)
    res = await sock.recv_until(lambda f: f["cmd"] == 39 and f.get("rid") == "c6")
    assert "users" not in res and "groups" not in res
    found = await api(client, "/message/search", me, q="mee")
    assert [u["id"] for u in found["users"]] == [meena.id] and [g["id"] for g in found["groups"]] == [mine]
    assert [m["content"] for m in found["rows"]] == ["meet at noon?"] and marked(found["rows"][0]) == ["mee"]
    assert "users" not in await api(client, "/message/search", me, q="mee", before=2**40)
