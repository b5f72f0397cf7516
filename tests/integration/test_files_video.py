"""Files (media 12) and video (media 8 with poster, duration, size) end to end over real
sockets (issue #19 item 7): upload, send, live delivery to the other side and the
sender's other device, sync and history after being offline, search by file name, the
download a recipient makes, refusals, and what a seed client gets instead. SQLite and
PostgreSQL; and across two nodes on the Redis bus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from imhub.config import Settings
from tests.integration.chatkit import Socket, User, befriend, connect, is_msg, make_group, make_user
from tests.integration.test_multinode import Cluster, cluster  # noqa: F401 (the two-node fixture)
from tests.media.media_samples import PDF, colour_video, image_bytes


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, media_file_kinds=["pdf"])


async def upload(client: TestClient, user: User, data: bytes, filename: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    r = await client.post("/attach/upload", data=form, headers=user.auth)
    body: dict[str, Any] = await r.json()
    assert body["code"] == 0, body
    return body["file"]  # type: ignore[no-any-return]


def file_body(f: dict[str, Any], name: str) -> dict[str, Any]:
    """A file message as the web client builds it from the upload reply."""
    return {"media": 12, "content": name, "url": f["url"], "amount": f["size"], "memo": f["mime"]}


def video_body(f: dict[str, Any]) -> dict[str, Any]:
    return {"media": 8, "url": f["url"], "pic": f["thumb"], "amount": f["duration_ms"],
            "memo": f"{f['width']}x{f['height']}"}


async def test_file_and_video_messages_live_sync_and_download(client: TestClient) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    a1, a2, sb = await connect(client, a), await connect(client, a), await connect(client, b)
    pdf = await upload(client, a, PDF, "季度报告.pdf")
    await a1.send(cmd=10, dstid=b.id, cid="f1", **file_body(pdf, "季度报告.pdf"))
    ack = await a1.reply()
    assert ack["cmd"] == 1 and ack["cid"] == "f1"
    for sock in (sb, a2):  # the recipient and the sender's other device
        got = await sock.recv_until(is_msg)
        assert (got["media"], got["content"], got["url"], got["amount"], got["memo"]) == (
            12, "季度报告.pdf", pdf["url"], len(PDF), "application/pdf"
        )
    # The recipient downloads it under its name, as an attachment.
    r = await client.get(pdf["url"], params={"name": "季度报告.pdf"}, headers=b.auth)
    assert r.status == 200 and await r.read() == PDF
    assert r.headers["Content-Type"] == "application/pdf" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="____.pdf"; filename*=UTF-8\'\'')

    clip = await upload(client, a, colour_video(seconds=1.5, size=(96, 64)), "clip.mp4")
    await a1.send(cmd=10, dstid=b.id, cid="v1", **video_body(clip))
    assert (await a1.reply())["cmd"] == 1
    got = await sb.recv_until(is_msg)
    assert (got["media"], got["url"], got["pic"], got["memo"]) == (8, clip["url"], clip["thumb"], "96x64")
    assert 1400 <= got["amount"] <= 1600
    r = await client.get(clip["url"])
    assert r.headers["Content-Type"] == "video/mp4" and "Content-Disposition" not in r.headers
    await a1.close()
    await a2.close()
    await sb.close()

    # b was offline for a third message: sync and history carry every field.
    await (sa := await connect(client, a)).send(cmd=10, dstid=b.id, cid="f2", **file_body(pdf, "copy.pdf"))
    assert (await sa.reply())["cmd"] == 1
    sb = await connect(client, b, autosync=0)
    conv = ack["conv"]
    await sb.send(cmd=20, rid="s", after={conv: 0})
    page = await sb.recv_until(lambda f: f["cmd"] == 30)
    assert [(m["media"], m["content"]) for m in page["msgs"]] == [(12, "季度报告.pdf"), (8, ""), (12, "copy.pdf")]
    assert page["msgs"][1]["pic"] == clip["thumb"] and page["msgs"][2]["amount"] == len(PDF)
    await sb.send(cmd=22, rid="h", conv=conv)
    hist = await sb.recv_until(lambda f: f["cmd"] == 32)
    assert [m["media"] for m in hist["msgs"]] == [12, 8, 12]
    # File names are searchable.
    await sb.send(cmd=27, rid="q", q="季度报告")
    hits = await sb.recv_until(lambda f: f["cmd"] == 39)
    assert [h["id"] for h in hits["hits"]] == [page["msgs"][0]["id"]]


async def test_file_in_a_group_reaches_members_only(client: TestClient) -> None:
    owner, member, outsider = await make_user(client), await make_user(client), await make_user(client)
    gid = await make_group(client, owner, member)
    so, sm, sx = await connect(client, owner), await connect(client, member), await connect(client, outsider)
    pdf = await upload(client, member, PDF, "agenda.pdf")
    await sm.send(cmd=11, dstid=gid, cid="g1", **file_body(pdf, "agenda.pdf"))
    assert (await sm.reply())["cmd"] == 1
    got = await so.recv_until(lambda f: is_msg(f) and f["media"] == 12)
    assert got["content"] == "agenda.pdf" and got["conv"] == f"g{gid}"
    await sx.no_frame()
    # A non-member cannot post a file to the group.
    await sx.send(cmd=11, dstid=gid, cid="x1", **file_body(pdf, "agenda.pdf"))
    assert (await sx.reply())["error"] == "not_member"


@pytest.mark.parametrize(
    ("change", "error", "msg"),
    [
        ({"content": ""}, "bad_frame", "a file message needs content"),
        ({"content": "a\nb.pdf"}, "bad_frame", "a file message needs content"),
        ({"content": "x" * 256}, "bad_frame", "a file message needs content"),
        ({"url": ""}, "bad_frame", "a file message needs url"),
        ({"url": "https://evil.example/x.pdf"}, "bad_url", "url: only this server's media URLs"),
        ({"url": "javascript:alert(1)"}, "bad_url", "url: javascript: URLs are not allowed"),
        ({"amount": -1}, "bad_frame", "amount (the file size"),
        ({"memo": "text/html; charset=utf-8"}, "bad_frame", "memo must be the file's MIME type"),
    ],
)
async def test_bad_file_messages_refused(client: TestClient, change: dict[str, Any], error: str, msg: str) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    body = {"media": 12, "content": "a.pdf", "url": "/mnt/0123456789abcdef0123456789abcdef.pdf", "amount": 5,
            "memo": "application/pdf"} | change
    await sa.send(cmd=10, dstid=b.id, cid="bad", **body)
    err = await sa.reply()
    assert err["cmd"] == 2 and err["error"] == error and err["msg"].startswith(msg), err


async def test_seed_client_gets_text(client: TestClient) -> None:
    a, b = await make_user(client), await make_user(client)
    await befriend(client, a, b)
    sa = await connect(client, a)
    # A seed connection gets no heartbeat reply (Socket.ready), and needs none: what it
    # misses while registering comes with its autosync.
    seed = Socket(await client.ws_connect("/chat", params={"id": str(b.id), "token": b.token}))
    pdf = await upload(client, a, PDF, "notes.pdf")
    await sa.send(cmd=10, dstid=b.id, cid="s1", **file_body(pdf, "notes.pdf"))
    got = await seed.recv_until(lambda f: f.get("cmd") == 10)
    assert got["media"] == 1 and got["content"] == f"[file] notes.pdf {pdf['url']}"
    assert "url" not in got and "memo" not in got and "amount" not in got
    clip = await upload(client, a, colour_video(seconds=0.5), "clip.mp4")
    await sa.send(cmd=10, dstid=b.id, cid="s2", **video_body(clip))
    got = await seed.recv_until(lambda f: f.get("cmd") == 10)
    assert got["media"] == 1 and got["content"] == f"[video] {clip['url']}"  # no "96x64" for people
    await seed.no_frame()


@pytest.mark.slow
async def test_file_and_video_across_two_nodes(cluster: Cluster) -> None:  # noqa: F811
    """Sent on node 0, delivered live on node 1 over Redis, and synced there."""
    h1, h2 = cluster.http
    a, b = await make_user(h1), await make_user(h2)  # type: ignore[arg-type]
    await befriend(h1, a, b)  # type: ignore[arg-type]
    sa = await connect(h1, a, autosync=0)  # type: ignore[arg-type]
    sb = await connect(h2, b, autosync=0)  # type: ignore[arg-type]
    clip = await upload(h1, a, colour_video(seconds=1.0), "clip.mp4")  # type: ignore[arg-type]
    png = await upload(h1, a, image_bytes("PNG"), "scan.png")  # type: ignore[arg-type]
    await sa.send(cmd=10, dstid=b.id, cid="n1", **video_body(clip))
    await sa.send(cmd=10, dstid=b.id, cid="n2", **file_body(png, "scan.png"))  # any of our media as a file
    got = [await sb.recv_until(is_msg), await sb.recv_until(is_msg)]
    assert [(m["media"], m["url"]) for m in got] == [(8, clip["url"]), (12, png["url"])]
    assert got[0]["pic"] == clip["thumb"] and got[1]["memo"] == "image/png"
    await sb.send(cmd=20, rid="s", after={got[0]["conv"]: 0})
    page = await sb.recv_until(lambda f: f.get("cmd") == 30)
    assert [(m["media"], m["content"], m["amount"]) for m in page["msgs"]] == [
        (8, "", clip["duration_ms"]), (12, "scan.png", png["size"])
    ]
    await sa.close()
    await sb.close()
