"""The seed's own browser client, run unchanged against imhub (issue #15).

:mod:`tests.integration.seedclient` models that page exactly (../shared/seed/CLIENT.md):
every frame with a ``}`` becomes a chat entry, costs a ``/user/find`` and clears the
draft. Against a real ``imhub serve`` process, a connection that declares nothing
(no ``v``) must get only what that page can show: chat messages of cmd 10/11 with
media 1/3/4 (other kinds downgraded to text), always with ``userid``; no acks without
a ``cid``, no presence, typing, receipts, recall, errors or group events.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.integration.chatkit import Socket, User, api, connect, make_group, make_user
from tests.integration.seedclient import SeedClient, close_reading
from tests.media.media_samples import WEBM, image_bytes
from tests.serverproc import ServerProcess

SERVER_ENV = {
    # Consent (issue #15's sibling): the seed's add-friend / join-group are instant.
    "IMHUB_FRIEND_POLICY": "open",
    "IMHUB_GROUP_JOIN_POLICY": "open",
    "IMHUB_SEND_RATE_PER_SECOND": "1000",
    "IMHUB_SEND_BURST": "1000",
    "IMHUB_LOG_LEVEL": "warning",
    "IMHUB_ADMIN_TOKEN": "seed-test-admin-token-0123456789abcdef",  # >= 32 characters
}
QUIET = 0.5  # how long "nothing more arrives" is watched for
_cids = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("seed-server"), **SERVER_ENV)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(server.url) as session:
        yield session


@pytest.fixture
async def seed(server: ServerProcess) -> AsyncIterator[SeedClient]:
    client = SeedClient(server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def befriend(http: Any, a: User, b: User) -> None:
    """Friends at once: the servers here run IMHUB_FRIEND_POLICY=open (the seed's way)."""
    body = await api(http, "/contact/addfriend", a, userid=a.id, dstid=b.id)
    assert body["code"] == 0 and "request" not in body["data"], body


class Modern:
    """A modern client (the SPA's protocol: ``v=2``, ``autosync=0``) on the same server."""

    def __init__(self, http: aiohttp.ClientSession, user: User) -> None:
        self.http, self.user = http, user
        self.sock: Socket | None = None
        self.last_ack: dict[str, Any] = {}

    @property
    def id(self) -> int:
        return self.user.id

    async def connect(self) -> None:
        self.sock = await connect(self.http, self.user, v=2, autosync=0)  # type: ignore[arg-type]

    async def disconnect(self) -> None:
        assert self.sock is not None
        await self.sock.close()
        self.sock = None

    async def say(self, cmd: int, dstid: int, media: int, **body: Any) -> tuple[str, int]:
        """Send with a cid and wait for the ack; the message's (conv, seq)."""
        assert self.sock is not None
        cid = f"m{next(_cids)}"
        await self.sock.send(cmd=cmd, dstid=dstid, media=media, cid=cid, **body)
        ack = await self.sock.recv_until(lambda f: f.get("cmd") in (1, 2) and f.get("cid") == cid)
        assert ack["cmd"] == 1, ack
        self.last_ack = ack
        return str(ack["conv"]), int(ack["seq"])

    async def upload(self, data: bytes, filename: str, content_type: str) -> str:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type=content_type)
        async with self.http.post("/attach/upload", data=form, headers=self.user.auth) as r:
            body = await r.json()
        assert body["code"] == 0, body
        return str(body["data"])


async def modern_user(http: aiohttp.ClientSession, nickname: str) -> Modern:
    m = Modern(http, await make_user(http, nickname))  # type: ignore[arg-type]
    await m.connect()
    return m


class Expected:
    """What the seed page must end up showing from others, per conversation, in order."""

    def __init__(self) -> None:
        self.by_conv: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}

    def add(self, conv_seq: tuple[str, int], media: int, body: dict[str, Any]) -> None:
        conv, seq = conv_seq
        self.by_conv.setdefault(conv, []).append((seq, media, body))

    def check(self, seed: SeedClient) -> None:
        for conv, want in self.by_conv.items():
            got = [e.frame for e in seed.conversation(conv) if not e.local]
            assert len(got) == len(want), (conv, [(f.get("seq"), f.get("content")) for f in got], want)
            for frame, (seq, media, body) in zip(got, want, strict=True):
                if "seq" in frame:
                    assert frame["seq"] == seq, (conv, frame, seq)
                shows_as(frame, media, body)
        # Nothing else from the server beyond what was expected (own messages stay local).
        convs = {e.conv for e in seed.received()}
        assert convs <= set(self.by_conv), convs - set(self.by_conv)


def shows_as(frame: dict[str, Any], media: int, body: dict[str, Any]) -> None:
    """``frame`` is what the seed page should draw for a message sent as ``media``/``body``."""
    if media in (1, 3, 4):
        assert frame["media"] == media, frame
        key = "content" if media == 1 else "url"
        assert frame[key] == body[key], (frame, body)
        return
    # Downgraded: readable text naming the essential (link, card name, title).
    assert frame["media"] == 1 and str(frame.get("content") or "").strip(), frame
    essential = {2: body.get("content"), 7: body.get("url"), 9: body.get("memo")}.get(media)
    if essential:
        assert essential in frame["content"], (frame, body)


def assert_clean(seed: SeedClient) -> None:
    assert seed.failed_requests == [], seed.failed_requests
    assert seed.spurious() == []
    assert seed.drafts_cleared_by_junk == 0
    assert seed.logged == []


# Every media kind a modern client can send, as a modern client sends it.
CARDS: list[tuple[int, dict[str, Any]]] = [
    (2, {"content": "Weekly news", "pic": "/mnt/none.jpg", "url": "https://example.com/news/1", "memo": "summary"}),
    (5, {"url": "", "amount": 888, "memo": "恭喜发财"}),
    (6, {"content": "[doge]"}),
    (7, {"url": "https://example.com/a?b=c"}),
    (8, {"pic": "/mnt/poster.jpg", "url": "/mnt/clip.mp4"}),
    (9, {"content": "42", "pic": "/mnt/face.jpg", "memo": "王小明"}),
]


async def test_seed_client_journey(server: ServerProcess, http: aiohttp.ClientSession, seed: SeedClient) -> None:
    """Register with an avatar, log in, add a friend, join a group, chat 1:1 and in the
    group with every media kind, a friend reconnecting, typing, reading and recalling,
    group joins and leaves by others, operators' notices, offline messages pushed on
    connect: no failed
    request, no spurious entry, no draft cleared by a non-chat frame, every message
    shown once and in order."""
    png = image_bytes("PNG", (48, 48))
    # --- register with an avatar (uploaded before the account exists), login ----------
    avatar = await seed.register(nickname="seed", avatar=png)
    assert avatar, seed.failed_requests
    await seed.login()
    me = await seed.post("/user/find", id=seed.id)
    assert me["data"]["avatar"] == avatar
    async with http.get(avatar) as r:
        assert r.status == 200 and r.content_type.startswith("image/"), (r.status, r.content_type)

    b = await modern_user(http, "bob")  # the friend
    c = await modern_user(http, "carol")  # the group's owner, not a friend
    d = await modern_user(http, "dave")  # joins and leaves the group later
    gid = await make_group(http, c.user, name="seeders")  # type: ignore[arg-type]
    expected = Expected()

    # --- the chat page: add friend, join group (by the prompts) ------------------------
    await seed.open_chat_page()
    await seed.add_friend(b.id)
    await seed.join_group(gid)
    assert b.id in seed.friends and gid in seed.groups

    # --- 1:1 with every media kind ------------------------------------------------------
    seed.open_chat = (10, b.id)
    conv = f"p{min(seed.id, b.id)}_{max(seed.id, b.id)}"
    image_url = await seed.upload(png, "photo.png", "image/png")
    voice_url = await seed.upload(WEBM, "voice.mp3", "audio/webm;codecs=opus")  # MediaRecorder's blob
    assert image_url and voice_url, seed.failed_requests
    await seed.send(10, b.id, 1, content="你好 from seed")
    await seed.send(10, b.id, 4, url=image_url)
    await seed.send(10, b.id, 3, url=voice_url, amount=3)
    assert b.sock is not None
    got = [await b.sock.recv_until(lambda f: f.get("cmd") == 10 and f.get("userid") == seed.id) for _ in range(3)]
    assert [f["media"] for f in got] == [1, 4, 3] and got[0]["content"] == "你好 from seed"

    b_image = await b.upload(png, "b.png", "image/png")
    b_voice = await b.upload(WEBM, "b.webm", "audio/webm")
    for media, body in [(1, {"content": "hi seed"}), (4, {"url": b_image, "pic": b_image}),
                        (3, {"url": b_voice, "amount": 2}), *CARDS]:
        expected.add(await b.say(10, seed.id, media, **body), media, body)
    await seed.wait_for(lambda s: s.frames_in(conv) >= 3 + len(CARDS))
    assert_clean(seed)
    assert all(seed.shown_in_open_chat(e) for e in seed.conversation(conv))

    # --- a friend reconnects, types, reads, recalls: none of it reaches the seed -------
    seed.draft = "half-typed"
    await b.disconnect()
    await b.connect()
    assert b.sock is not None
    await b.sock.send(cmd=24, conv=conv)  # typing
    await b.sock.send(cmd=23, conv=conv, seq=expected.by_conv[conv][-1][0])  # read all
    recall_me = {"content": "oops, wrong chat"}
    expected.add(await b.say(10, seed.id, 1, **recall_me), 1, recall_me)  # shown; the recall is not
    await b.sock.send(cmd=25, rid="x1", id=b.last_ack["id"])
    await b.sock.recv_until(lambda f: f.get("cmd") == 36 or f.get("cmd") == 2)
    await seed.wait_for(lambda s: s.frames_in(conv) >= 4 + len(CARDS))
    seed.draft = "half-typed"
    await asyncio.sleep(QUIET)
    assert seed.draft == "half-typed", [e.frame for e in seed.received()][-3:]
    assert_clean(seed)

    # --- a message to a non-friend: the seed page gets no error frame ----------------
    await seed.send(10, c.id, 1, content="not your friend")
    body = {"content": "after the refusal"}
    expected.add(await b.say(10, seed.id, 1, **body), 1, body)
    await seed.wait_for(lambda s: s.frames_in(conv) >= 5 + len(CARDS))
    assert_clean(seed)

    # --- group chat, group joins and leaves by others ---------------------------------
    seed.open_chat = (11, gid)
    await seed.send(11, gid, 1, content="hello group")
    await seed.send(11, gid, 4, url=image_url)
    await seed.send(11, gid, 3, url=voice_url, amount=1)
    joined = await api(http, "/contact/joincommunity", d.user, userid=d.id, dstid=gid)  # type: ignore[arg-type]
    assert joined["code"] == 0, joined
    for media, body in [(1, {"content": "welcome"}), (4, {"url": b_image}), (3, {"url": b_voice, "amount": 4}),
                        (7, {"url": "https://example.com/g"}), (9, {"content": str(b.id), "memo": "bob"})]:
        expected.add(await c.say(11, gid, media, **body), media, body)
    body = {"content": "dave here (no friend of the seed user)"}
    expected.add(await d.say(11, gid, 1, **body), 1, body)
    left = await api(http, "/contact/leavecommunity", d.user, userid=d.id, dstid=gid)  # type: ignore[arg-type]
    assert left["code"] == 0, left
    # Operators' notices: to the user (cmd 40) and to the group (a stored event).
    admin = {"Authorization": f"Bearer {SERVER_ENV['IMHUB_ADMIN_TOKEN']}"}
    for path in (f"/admin/users/{seed.id}/notice", f"/admin/groups/{gid}/notice"):
        async with http.post(path, json={"text": "maintenance at 22:00"}, headers=admin) as r:
            assert r.status == 200, await r.text()
    body = {"content": "dave left"}
    expected.add(await c.say(11, gid, 1, **body), 1, body)
    await seed.wait_for(lambda s: s.frames_in(f"g{gid}") >= 7)
    await asyncio.sleep(QUIET)
    assert_clean(seed)

    # --- offline: the page is closed, messages come in, the page is opened again -------
    await seed.close_page()
    offline: list[tuple[Modern, int, int, dict[str, Any]]] = [
        (b, 10, seed.id, {"content": "while you were away 1"}),
        (c, 11, gid, {"content": "group while away"}),
        (b, 10, seed.id, {"url": "https://example.com/offline"}),
        (b, 10, seed.id, {"content": "while you were away 2"}),
        (c, 11, gid, {"content": "42", "memo": "名片"}),
    ]
    for sender, cmd, dstid, body in offline:
        media = 7 if "url" in body else 9 if "memo" in body else 1
        expected.add(await sender.say(cmd, dstid, media, **body), media, body)
    before = seed.frames_in(conv) + seed.frames_in(f"g{gid}")
    await seed.open_chat_page()
    await seed.wait_for(lambda s: s.frames_in(conv) + s.frames_in(f"g{gid}") >= before + len(offline))
    await asyncio.sleep(QUIET)
    assert_clean(seed)
    expected.check(seed)
    # One device: the server never echoes the page's own messages back to it.
    assert not [e.frame for e in seed.received() if e.frame.get("userid") == seed.id]


async def test_seed_socket_gets_acks_only_with_a_cid_and_no_errors(
    http: aiohttp.ClientSession,
) -> None:
    """The seed mode's frame filter, on a raw socket without ``v``."""
    a, b = await make_user(http), await make_user(http)  # type: ignore[arg-type]
    await befriend(http, a, b)  # type: ignore[arg-type]
    ws = await http.ws_connect("/chat", params={"id": str(a.id), "token": a.token})
    try:
        await ws.send_json({"cmd": 10, "dstid": b.id, "userid": a.id, "media": 1, "content": "no cid"})
        await ws.send_str("not json")
        await ws.send_json({"cmd": 99})
        await ws.send_json({"cmd": 10, "dstid": 999999, "media": 1, "content": "nobody"})
        await ws.send_json({"cmd": 0})  # heartbeat: the seed never sends it; no rule needed
        await ws.send_json({"cmd": 10, "dstid": b.id, "userid": a.id, "media": 1, "content": "with", "cid": "k1"})
        frames = []
        with pytest.raises(TimeoutError):
            while True:
                msg = await ws.receive(timeout=QUIET)
                frames.append(msg.json())
        acks = [f for f in frames if f.get("cmd") == 1]
        assert [f["cid"] for f in acks] == ["k1"], frames
        assert not [f for f in frames if f.get("cmd") not in (0, 1)], frames
    finally:
        await close_reading(ws, lambda data: None)


async def test_unauthenticated_upload_takes_images_only(server: ServerProcess) -> None:
    """The register page's avatar upload works without a session; nothing else does."""
    async with aiohttp.ClientSession(server.url) as anon:
        form = aiohttp.FormData()
        form.add_field("file", WEBM, filename="voice.mp3", content_type="audio/webm")
        async with anon.post("/attach/upload", data=form) as r:
            body = await r.json(content_type=None)
        assert r.status in (400, 401, 403, 415) and body["code"] != 0, (r.status, body)
        form = aiohttp.FormData()
        form.add_field("file", image_bytes("JPEG", (32, 32)), filename="a.jpg", content_type="image/jpeg")
        async with anon.post("/attach/upload", data=form) as r:
            body = await r.json(content_type=None)
        assert r.status == 200 and body["code"] == 0 and body["data"], (r.status, body)


async def test_group_events_reach_the_seed_page_as_text_when_enabled(tmp_path) -> None:
    """IMHUB_SEED_GROUP_EVENTS=true: a join or leave is a text message from the group,
    with a ``userid`` the page can look up; never an empty bubble."""
    proc = ServerProcess(tmp_path / "data", IMHUB_SEED_GROUP_EVENTS="true", **SERVER_ENV)
    proc.start()
    seed = SeedClient(proc.url)
    try:
        async with aiohttp.ClientSession(proc.url) as http:
            await seed.register()
            await seed.login()
            owner = await modern_user(http, "owner")
            joiner = await modern_user(http, "joiner")
            gid = await make_group(http, owner.user, name="events")  # type: ignore[arg-type]
            await seed.open_chat_page()
            await seed.join_group(gid)
            seed.open_chat = (11, gid)
            joined = await api(http, "/contact/joincommunity", joiner.user, userid=joiner.id, dstid=gid)  # type: ignore[arg-type]
            assert joined["code"] == 0, joined
            left = await api(http, "/contact/leavecommunity", joiner.user, userid=joiner.id, dstid=gid)  # type: ignore[arg-type]
            assert left["code"] == 0, left
            # The seed user's own join may show too; the other's join and leave must.
            await seed.wait_for(lambda s: len([e for e in s.received() if e.frame.get("userid") == joiner.id]) >= 2)
            await asyncio.sleep(QUIET)
            assert_clean(seed)
            events = [e for e in seed.received() if e.frame.get("userid") == joiner.id]
            assert len(events) == 2, [e.frame for e in seed.received()]
            for e in seed.received():
                f = e.frame
                assert f["cmd"] == 11 and f["dstid"] == gid and f["media"] == 1 and f["content"].strip(), f
                assert seed.shown_in_open_chat(e)
    finally:
        await seed.aclose()
        proc.stop()
