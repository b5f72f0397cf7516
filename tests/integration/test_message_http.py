"""The HTTP twins of the WebSocket requests: sync, conversations, history, search,
read, recall, receipts — same rules, seed envelopes, stable error names."""

from __future__ import annotations

from tests.integration.chatkit import api, befriend, connect, make_user


async def test_http_sync_history_search_read_recall(client) -> None:
    a, b, c = await make_user(client), await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    acks = []
    for i, text in enumerate(["早上好", "今天开会", "会议改到下午"]):
        await sa.send(cmd=10, dstid=b.id, media=1, content=text, cid=f"h{i}")
        acks.append(await sa.reply())
    conv = acks[0]["conv"]

    convs = await api(client, "/message/conversations", b)
    assert convs["code"] == 0 and convs["rows"][0]["conv"] == conv and convs["rows"][0]["unread"] == 3

    page = await api(client, "/message/sync", b, after=f"{conv}:0", limit=2)
    assert [m["seq"] for m in page["rows"]] == [1, 2] and page["more"] is True and page["after"] == {conv: 2}
    page = await api(client, "/message/sync", b, after=f"{conv}:2")
    assert [m["content"] for m in page["rows"]] == ["会议改到下午"] and page["more"] is False

    hist = await api(client, "/message/history", b, conv=conv, before=3, limit=1)
    assert [m["seq"] for m in hist["rows"]] == [2] and hist["more"] is True

    found = await api(client, "/message/search", b, q="会")
    assert [m["seq"] for m in found["rows"]] == [3, 2]

    marked = await api(client, "/message/read", b, conv=conv, seq=3)
    assert marked["data"]["read_seq"] == 3
    assert (await api(client, "/message/conversations", b))["rows"][0]["unread"] == 0
    beyond = await api(client, "/message/read", b, conv=conv, seq=9)
    assert beyond["code"] == -1 and beyond["error"] == "seq_beyond_end" and beyond["errcode"] == 4220

    receipts = await api(client, "/message/receipts", a, conv=conv)
    assert {r["userid"]: r["read_seq"] for r in receipts["rows"]}[b.id] == 3

    assert (await api(client, "/message/recall", b, id=acks[2]["id"]))["error"] == "not_yours"
    recalled = await api(client, "/message/recall", a, id=acks[2]["id"])
    assert recalled["code"] == 0 and recalled["data"]["recalled"] is True and recalled["data"]["content"] == ""

    outsider = await api(client, "/message/history", c, conv=conv)
    assert outsider["code"] == -1 and outsider["error"] == "not_in_conversation"
    assert (await api(client, "/message/search", c, q=""))["code"] == -1
    assert (await api(client, "/message/search", c, q="x" * 10240))["code"] == -1
    assert (await api(client, "/message/sync", c, after="garbage"))["code"] == -1
    client.session.cookie_jar.clear()
    r = await client.post("/message/sync", data={"after": f"{conv}:0"})
    assert r.status == 401
