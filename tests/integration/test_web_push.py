"""Web Push with a local push receiver standing in for the browser's push service
(the server's code path is the one a real push service gets): a push reaches an
offline recipient's subscription, encrypted to the browser's keys (aes128gcm) and
signed with the server's VAPID key; no push while the recipient is connected or for a
conversation the recipient muted; a 410 removes the subscription; the private key stays private."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict
from py_vapid import Vapid02

from imhub.config import Settings
from imhub.web.context import SERVICES
from tests.integration.chatkit import User, api, befriend, connect, make_user


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's push subscription keys (what PushManager.subscribe creates)."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm")
        result: dict[str, Any] = json.loads(plain)
        return result


@dataclass
class PushReceiver:
    """The push service: records every push and answers ``status``."""

    status: int = 201
    pushes: list[tuple[CIMultiDict[str], bytes]] = field(default_factory=list)
    arrived: asyncio.Queue[tuple[CIMultiDict[str], bytes]] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        item = (CIMultiDict(request.headers), await request.read())
        self.pushes.append(item)
        self.arrived.put_nowait(item)
        return web.Response(status=self.status)

    async def next(self, timeout: float = 10.0) -> tuple[CIMultiDict[str], bytes]:
        return await asyncio.wait_for(self.arrived.get(), timeout)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", push_allow_http=True, push_subject="mailto:ops@example.com")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[PushReceiver, str]]:
    rec = PushReceiver()
    app = web.Application()
    app.router.add_post("/push/{token}", rec.handle)
    async with TestServer(app) as server:
        yield rec, str(server.make_url("/push/browser-1"))


async def subscribe(client: TestClient, user: User, endpoint: str, browser: Browser) -> dict[str, Any]:
    keys = {"p256dh": browser.p256dh, "auth": b64url(browser.auth)}
    return await api(client, "/push/subscribe", user, endpoint=endpoint, **keys)


async def wait_offline(client: TestClient, user: User) -> None:
    presence = client.app[SERVICES].presence
    for _ in range(200):
        if not await presence.is_online(user.id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("still online")


async def test_offline_recipient_gets_an_encrypted_signed_push(
    client: TestClient, settings: Settings, receiver: tuple[PushReceiver, str]
) -> None:
    rec, endpoint = receiver
    alice, bob = await make_user(client), await make_user(client)
    await befriend(client, alice, bob)
    browser = Browser()
    key = await api(client, "/push/key", bob)
    assert key["code"] == 0 and key["data"]["enabled"] is True
    public_key = key["data"]["public_key"]
    assert len(b64url_decode(public_key)) == 65
    assert (await subscribe(client, bob, endpoint, browser))["code"] == 0

    a = await connect(client, alice)
    await a.send(cmd=10, dstid=bob.id, media=1, content="secret text", cid="m1")
    ack = (await a.reply())
    headers, body = await rec.next()
    # Encrypted for the browser, with as little inside as possible (no text, no sender).
    assert headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) == settings.push_ttl_seconds
    assert b"secret text" not in body
    assert browser.decrypt(body) == {"conv": ack["conv"], "count": 1}
    # Signed with the server's VAPID key, for this push service.
    auth = headers["Authorization"]
    assert auth.startswith("vapid t=") and f"k={public_key}" in auth
    assert Vapid02.verify(auth)
    claims = json.loads(b64url_decode(auth.split("t=", 1)[1].split(",", 1)[0].split(".")[1]))
    assert claims["aud"] == endpoint.rsplit("/push/", 1)[0] and claims["sub"] == "mailto:ops@example.com"

    # The count is the recipient's unread count there.
    await a.send(cmd=10, dstid=bob.id, media=1, content="two", cid="m2")
    _, body = await rec.next()
    assert browser.decrypt(body)["count"] == 2
    await api(client, "/message/read", bob, conv=ack["conv"], seq=2)

    # Connected: no push. Pushes go out in order, so the next one that arrives is for
    # the message sent after bob left, and nothing came in between.
    b = await connect(client, bob)
    await a.send(cmd=10, dstid=bob.id, media=1, content="while online", cid="m3")
    await a.reply()
    await b.recv_until(lambda f: f.get("cid") == "m3")
    await b.close()
    await wait_offline(client, bob)
    # Muted by bob (his conversation settings): no push either.
    muted = await api(client, "/message/convsettings", bob, conv=ack["conv"], muted="true")
    assert muted["code"] == 0, muted
    await a.send(cmd=10, dstid=bob.id, media=1, content="muted", cid="m4")
    await a.reply()
    # Pushes go out in order: once carol's (another conversation) is here, m4 was decided.
    carol = await make_user(client)
    await befriend(client, carol, bob)
    c = await connect(client, carol)
    await c.send(cmd=10, dstid=bob.id, media=1, content="from carol", cid="c1")
    carol_conv = (await c.reply())["conv"]
    _, body = await rec.next()
    assert browser.decrypt(body) == {"conv": carol_conv, "count": 1}
    assert (await api(client, "/message/convsettings", bob, conv=ack["conv"], muted="false"))["code"] == 0
    before = len(rec.pushes)
    await a.send(cmd=10, dstid=bob.id, media=1, content="offline again", cid="m5")
    _, body = await rec.next()
    assert browser.decrypt(body) == {"conv": ack["conv"], "count": 3}  # seqs 3, 4, 5 unread
    assert len(rec.pushes) == before + 1 == 4  # m1, m2, carol's, m5


async def test_gone_subscription_is_removed(
    client: TestClient, settings: Settings, receiver: tuple[PushReceiver, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rec, endpoint = receiver
    alice, bob = await make_user(client), await make_user(client)
    await befriend(client, alice, bob)
    assert (await subscribe(client, bob, endpoint, Browser()))["code"] == 0
    store = client.app[SERVICES].push._store
    assert [s.endpoint for s in await store.of_users([bob.id])] == [endpoint]
    rec.status = 410
    a = await connect(client, alice)
    await a.send(cmd=10, dstid=bob.id, media=1, content="hi", cid="g1")
    await rec.next()
    for _ in range(200):
        if not await store.of_users([bob.id]):
            break
        await asyncio.sleep(0.02)
    assert await store.of_users([bob.id]) == []
    # The private key is in no log line (pushes, failures and removals were logged).
    key = Vapid02.from_file(str(settings.effective_vapid_key_file))
    secret = b64url(key.private_key.private_numbers().private_value.to_bytes(32, "big"))
    pem_body = key.private_pem().decode().splitlines()[1]
    logs = capsys.readouterr()
    assert "push subscription expired" in logs.out + logs.err
    assert secret not in logs.out + logs.err and pem_body not in logs.out + logs.err


async def test_group_push_skips_the_sender_and_online_members(
    client: TestClient, receiver: tuple[PushReceiver, str]
) -> None:
    rec, endpoint = receiver
    owner, member = await make_user(client), await make_user(client)
    body = await api(client, "/contact/createcommunity", owner, ownerid=owner.id, name="g", joinpolicy="open")
    gid = int(body["data"]["id"])
    assert (await api(client, "/contact/joincommunity", member, userid=member.id, dstid=gid))["code"] == 0
    mine, theirs = Browser(), Browser()
    assert (await subscribe(client, owner, endpoint + "-owner", mine))["code"] == 0
    assert (await subscribe(client, member, endpoint + "-member", theirs))["code"] == 0
    o = await connect(client, owner)
    await o.send(cmd=11, dstid=gid, media=1, content="hello group", cid="x1")
    ack = await o.reply()
    _, body_bytes = await rec.next()
    assert theirs.decrypt(body_bytes)["conv"] == ack["conv"]
    await asyncio.sleep(0.2)
    assert len(rec.pushes) == 1  # not to the sender's own browser


async def test_subscription_is_validated_and_the_private_key_stays_private(
    client: TestClient, settings: Settings, receiver: tuple[PushReceiver, str]
) -> None:
    _, endpoint = receiver
    alice = await make_user(client)
    bad = await api(client, "/push/subscribe", alice, endpoint=endpoint, p256dh="AAAA", auth=b64url(os.urandom(16)))
    assert bad["code"] == -1 and bad["error"] == "bad_param"
    bad = await subscribe(client, alice, "javascript:alert(1)", Browser())
    assert bad["code"] == -1 and bad["error"] == "bad_param"
    client.session.cookie_jar.clear()  # no session cookie: not logged in
    r = await client.post("/push/key")
    assert r.status == 401
    key_file = settings.effective_vapid_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = Vapid02.from_file(str(key_file)).private_key.private_numbers().private_value.to_bytes(32, "big")
    text = await (await client.post("/push/key", headers=alice.auth)).text()
    assert b64url(private) not in text and "PRIVATE" not in text
    # The same key after a restart (the file is read, not replaced).
    again = await client.app[SERVICES].push._store.of_users([alice.id])
    assert again == []
    from imhub.services.push import load_or_create_vapid_key, public_key_of

    assert public_key_of(load_or_create_vapid_key(key_file)) == client.app[SERVICES].push.public_key


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    """Workers starting together on a fresh data directory end up with the same key."""
    from concurrent.futures import ThreadPoolExecutor

    from imhub.services.push import load_or_create_vapid_key, public_key_of

    path = tmp_path / "data" / "vapid_private.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: public_key_of(load_or_create_vapid_key(path)), range(16)))
    assert len(set(keys)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["vapid_private.pem"]  # no temporary files left
