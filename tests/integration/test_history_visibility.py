"""History visibility (issue #14): under ``joined`` a new member reads nothing from
before their join — not by history, sync, search, the conversation list or the
autosync backlog; under ``shared`` everything; a former member keeps what they could
read up to their leave and nothing after. HTTP and WebSocket, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imhub.config import Settings
from tests.integration.chatkit import User, api, connect, join_group, make_group, make_user


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


async def post(client, owner: User, gid: int, text: str) -> None:
    sock = await connect(client, owner, autosync=0)
    await sock.send(cmd=11, dstid=gid, media=1, content=text, cid=text)
    assert (await sock.reply())["cmd"] == 1
    await sock.close()


def texts(rows: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in rows if m["media"] == 1]


async def readable(client, who: User, gid: int) -> dict[str, list[str]]:
    """What ``who`` gets of the group by each HTTP read path."""
    conv = f"g{gid}"
    history = await api(client, "/message/history", who, conv=conv)
    sync = await api(client, "/message/sync", who, after=f"{conv}:0")
    search = await api(client, "/message/search", who, q="secret")
    return {
        "history": texts(history.get("rows", [])),
        "sync": texts(sync.get("rows", [])),
        "search": texts(search.get("rows", [])),
    }


async def test_new_member_of_joined_group_reads_nothing_from_before(client) -> None:
    owner, member = await make_user(client), await make_user(client)
    gid = await make_group(client, owner)  # server default: approval + joined
    await post(client, owner, gid, "secret plans")
    await join_group(client, owner, member, gid)
    await post(client, owner, gid, "welcome, secret handshake")
    assert await readable(client, member, gid) == {
        "history": ["welcome, secret handshake"],
        "sync": ["welcome, secret handshake"],
        "search": ["welcome, secret handshake"],
    }
    assert (await readable(client, owner, gid))["history"] == ["secret plans", "welcome, secret handshake"]
    # The same over the WebSocket, and nothing from before in the backlog.
    ws = await connect(client, member)  # autosync=1: the backlog comes first
    await ws.send(cmd=22, rid="h", conv=f"g{gid}")
    page = await ws.recv_until(lambda f: f["cmd"] == 32)
    assert texts(page["msgs"]) == ["welcome, secret handshake"]
    await ws.send(cmd=20, rid="s", after={f"g{gid}": 0})
    page = await ws.recv_until(lambda f: f["cmd"] == 30)
    assert texts(page["msgs"]) == ["welcome, secret handshake"]
    await ws.send(cmd=27, rid="q", q="plans")
    assert (await ws.recv_until(lambda f: f["cmd"] == 39))["hits"] == []
    seen = [f.get("content") for f in ws._early + ws.frames]
    assert "secret plans" not in seen
    # The conversation list: unread counts only what the member may read.
    (conv,) = [c for c in (await api(client, "/message/conversations", member))["rows"] if c["cmd"] == 11]
    assert conv["last"]["content"] == "welcome, secret handshake" and conv["unread"] <= 2


async def test_shared_group_shows_everything(client) -> None:
    owner, member = await make_user(client), await make_user(client)
    gid = await make_group(client, owner, visibility="shared")
    await post(client, owner, gid, "secret plans")
    await join_group(client, owner, member, gid)
    assert (await readable(client, member, gid))["history"] == ["secret plans"]
    assert (await readable(client, member, gid))["search"] == ["secret plans"]


async def test_former_member_keeps_what_they_saw_and_nothing_after(client) -> None:
    owner, member, stranger = await make_user(client), await make_user(client), await make_user(client)
    gid = await make_group(client, owner, member)
    await post(client, owner, gid, "secret before leaving")
    assert (await api(client, "/contact/leavecommunity", member, dstid=gid))["code"] == 0
    await post(client, owner, gid, "secret after leaving")
    got = await readable(client, member, gid)
    assert got["history"] == ["secret before leaving"] and got["sync"] == ["secret before leaving"]
    # A stranger never could read it.
    refused = await api(client, "/message/history", stranger, conv=f"g{gid}")
    assert refused["code"] == -1 and refused["error"] == "not_in_conversation"
    denied = await api(client, "/message/sync", stranger, after=f"g{gid}:0")
    assert denied["rows"] == [] and denied["denied"] == [f"g{gid}"]


async def test_search_pages_past_hidden_hits(client) -> None:
    owner, member = await make_user(client), await make_user(client)
    gid = await make_group(client, owner)
    for i in range(9):
        await post(client, owner, gid, f"secret old {i}")
    await join_group(client, owner, member, gid)
    for i in range(2):
        await post(client, owner, gid, f"secret new {i}")
    page = await api(client, "/message/search", member, q="secret", limit=3)
    assert texts(page["rows"]) == ["secret new 1", "secret new 0"] and page["more"] is False
    page = await api(client, "/message/search", owner, q="secret", limit=3)
    assert texts(page["rows"]) == ["secret new 1", "secret new 0", "secret old 8"] and page["more"] is True
