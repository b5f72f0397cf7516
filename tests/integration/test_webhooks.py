"""Webhooks (issue #20 part 2) against a real HTTP receiver: signed deliveries from a
durable outbox that survive the receiver being down and the server restarting, in
order per conversation, each event once, drained by one process among several, on
SQLite and PostgreSQL; the before-send hook; secrets never in logs or listings."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from structlog.testing import capture_logs

from imhub.app import build_app
from imhub.cli import main
from imhub.config import Settings
from imhub.services.apikeys import ApiKeyService
from imhub.services.webhooks import WebhookService
from imhub.store.db import Database
from imhub.store.integration import IntegrationStore
from imhub.store.migrate import migrate
from imhub.store.webhooks import WebhookStore
from imhub.web.context import SERVICES
from tests.conftest import act_as_web_client, redis_or_skip
from tests.integration.chatkit import befriend, connect, make_user
from tests.integration.serverapi import call, make_key, provisioned
from tests.integration.webhookkit import Receiver
from tests.serverproc import ServerProcess, free_port

FAST = {
    "webhook_allow_http_loopback": True, "webhook_poll_seconds": 0.05, "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_delay_seconds": 0.3,
}


def hook_settings(tmp_path: Path, db_url: str, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, **{**FAST, **extra})


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(settings))) as c:
        act_as_web_client(c)
        yield c


async def receiving(svc: Any, receiver: Receiver, events: str) -> None:
    """Subscribe ``receiver`` to ``events`` (its secret from the answer), then start it."""
    _, receiver.secret = await svc.webhooks.add(receiver.url, events)
    await svc.webhooks.refresh()
    await receiver.start()


def in_order(events: list[dict[str, Any]]) -> list[int]:
    return [e["data"]["seq"] for e in events]


async def test_receiver_down_server_restart_then_back(db_url: str, tmp_path: Path) -> None:
    settings = hook_settings(tmp_path, db_url)
    port = free_port()
    async with running(settings) as client:
        svc = client.server.app[SERVICES]
        _, secret = await svc.webhooks.add(f"http://127.0.0.1:{port}/hook", "*")
        await svc.webhooks.refresh()
        key = await make_key(client)
        ann = await provisioned(client, key, "ann")
        bob = await provisioned(client, key, "bob")
        status, g = await call(client, key, "POST", "/groups", {"owner": "ann", "name": "g", "members": ["bob"]})
        gid = g["data"]["id"]
        sock = await connect(client, ann)
        for i in range(6):
            status, sent = await call(client, key, "POST", "/messages",
                                      {"from": "ann", "to_group": gid, "content": f"m{i}", "cid": f"c{i}"})
            assert status == 200, sent
        await sock.close()
        # Nobody listens on the port: deliveries fail and are retried, none is lost.
        for _ in range(100):
            states = await svc.webhooks.outbox_states()
            retrying = await svc.webhooks.attempted()
            if states.get("pending", 0) >= 8 and retrying:
                break
            await asyncio.sleep(0.05)
        assert retrying and "done" not in states and states["pending"] >= 8, states

    receiver = Receiver(secret, port, fail_next=2)  # up again, but failing twice first
    await receiver.start()
    try:
        with capture_logs() as logs:
            async with running(settings) as client:  # a restart: the outbox is in the database
                await receiver.wait_for(lambda: len(receiver.of("message.stored", conv=f"g{gid}")) >= 8)
                await receiver.wait_for(lambda: bool(receiver.of("user.offline", userid=ann.id)))
                await asyncio.sleep(0.3)  # nothing more (no duplicate) arrives
    finally:
        await receiver.stop()
    stored = receiver.of("message.stored", conv=f"g{gid}")
    assert in_order(stored) == list(range(1, 9))
    assert [e["data"]["content"] for e in stored if e["data"]["media"] == 1] == [f"m{i}" for i in range(6)]
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert receiver.rejected_signatures == 0
    assert receiver.of("group.member", change="joined", userid=bob.id, group=gid)
    assert receiver.of("user.online", userid=ann.id)
    assert secret not in repr(logs)


async def test_several_processes_drain_once(db_url: str, tmp_path: Path) -> None:
    """Two services on one database (as two workers or nodes): the lease lets one
    deliver; every event arrives once, in order per conversation."""
    settings = hook_settings(tmp_path, db_url)
    receiver = Receiver("", free_port())
    dbs = [Database(db_url), Database(db_url)]
    nodes = [WebhookService(settings, WebhookStore(db), f"node-{i}") for i, db in enumerate(dbs)]
    _, receiver.secret = await nodes[0].add(receiver.url, "message.stored")
    await receiver.start()
    try:
        for n in nodes:
            await n.refresh()
            n.start()
        for i in range(60):
            nodes[i % 2].emit("message.stored", f"c{i % 3}", {"seq": i // 3 + 1, "conv": f"c{i % 3}"}, i // 3 + 1)
            if i % 7 == 0:
                await asyncio.sleep(0.02)
        await receiver.wait_for(lambda: len(receiver.events) >= 60)
        await asyncio.sleep(0.3)
    finally:
        for n in nodes:
            await n.stop()
        for db in dbs:
            await db.dispose()
        await receiver.stop()
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == 60 and len(set(ids)) == 60
    for conv in ("c0", "c1", "c2"):
        assert in_order(receiver.of("message.stored", conv=conv)) == list(range(1, 21))


async def test_before_send_hook_rejects_rewrites_and_fails_open_or_closed(tmp_path: Path) -> None:
    hook = Receiver("hook-secret-0123456789", free_port())

    async def moderate(event: dict[str, Any]) -> web.Response:
        content = event["data"]["content"]
        if "slow" in content:
            await asyncio.sleep(2)
        if "spam" in content:
            return web.json_response({"action": "reject", "reason": "no spam"})
        if "darn" in content:
            return web.json_response({"action": "rewrite", "content": content.replace("darn", "d**n")})
        return web.json_response({"action": "allow"})

    hook.handler = moderate
    await hook.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
    await migrate(url)
    try:
        for fail_open in (True, False):
            settings = hook_settings(
                tmp_path, url, webhook_before_send_url=hook.url, webhook_before_send_secret=hook.secret,
                webhook_before_send_timeout_seconds=0.3, webhook_before_send_fail_open=fail_open,
            )
            with capture_logs() as logs:
                async with running(settings) as client:
                    a, b = await make_user(client), await make_user(client)
                    await befriend(client, a, b)
                    sa, sb = await connect(client, a), await connect(client, b)
                    await sa.send(cmd=10, dstid=b.id, media=1, content="buy spam", cid="x1")
                    err = await sa.reply()
                    assert err["cmd"] == 2 and err["error"] == "rejected" and err["cid"] == "x1", err
                    await sa.send(cmd=10, dstid=b.id, media=1, content="oh darn", cid="x2")
                    assert (await sa.reply())["cmd"] == 1
                    got = await sb.recv_until(lambda f: f.get("cmd") == 10)
                    assert got["content"] == "oh d**n"
                    await sa.send(cmd=10, dstid=b.id, media=1, content="slow one", cid="x3")
                    reply = await sa.reply()
                    if fail_open:
                        assert reply["cmd"] == 1
                    else:
                        assert reply["cmd"] == 2 and reply["error"] == "hook_unavailable" and reply["retry_after"]
                    await sa.close()
                    await sb.close()
            assert hook.secret not in repr(logs)
    finally:
        await hook.stop()


def test_urls_events_and_secrets_in_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMHUB_DATA_DIR", str(tmp_path))
    asyncio.run(migrate(Settings(data_dir=tmp_path).effective_database_url))
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args))

    refused = run("webhook", "add", "http://127.0.0.1:9/hook")
    assert refused.exit_code == 1 and "https" in refused.output  # http needs the setting
    refused = run("webhook", "add", "https://example.com/h", "--events", "bogus")
    assert refused.exit_code == 1 and "events" in refused.output
    added = run("webhook", "add", "https://example.com/h", "--events", "message.stored,user.online")
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("whsec_")
    listed = run("webhook", "list")
    assert "https://example.com/h" in listed.output and "message.stored,user.online" in listed.output
    assert secret not in listed.output
    monkeypatch.setenv("IMHUB_WEBHOOK_ALLOW_HTTP_LOOPBACK", "true")
    assert run("webhook", "add", "http://127.0.0.1:9/hook").exit_code == 0
    assert run("webhook", "remove", "1").exit_code == 0
    assert "example.com" not in run("webhook", "list").output
    assert run("webhook", "remove", "1").exit_code == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT workers")
async def test_two_workers_deliver_each_event_once(db_url: str, tmp_path: Path) -> None:
    """`imhub serve --workers 2`: sends land on both workers, one drains the outbox."""
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, webhook_allow_http_loopback=True)
    receiver = Receiver("", free_port())
    db = Database(db_url)
    try:
        _, receiver.secret = await WebhookService(settings, WebhookStore(db), "setup").add(receiver.url, "*")
        _, key = await ApiKeyService(settings, IntegrationStore(db)).create("workers", "users,messages,groups")
    finally:
        await db.dispose()
    await receiver.start()
    server = ServerProcess(
        tmp_path / "data", IMHUB_WORKERS="2", IMHUB_BUS="redis", IMHUB_REDIS_URL=redis_or_skip(),
        IMHUB_REDIS_PREFIX=f"t{uuid.uuid4().hex[:10]}", IMHUB_DATABASE_URL=db_url,
        IMHUB_WEBHOOK_ALLOW_HTTP_LOOPBACK="true", IMHUB_WEBHOOK_POLL_SECONDS="0.05",
    )
    await asyncio.to_thread(server.start)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        # A new connection per call: the kernel spreads them over both workers.
        async with aiohttp.ClientSession(server.url, connector=aiohttp.TCPConnector(force_close=True),
                                         headers=headers) as http:
            for ext in ("ann", "bob"):
                async with http.post("/server/v1/users", json={"ext_id": ext}) as r:
                    assert r.status == 200
            async with http.post("/server/v1/groups", json={"owner": "ann", "name": "g", "members": ["bob"]}) as r:
                gid = (await r.json())["data"]["id"]
            for i in range(20):
                body = {"from": "ann" if i % 2 else "bob", "to_group": gid, "content": f"w{i}", "cid": f"w{i}"}
                async with http.post("/server/v1/messages", json=body) as r:
                    assert r.status == 200, await r.text()
        await receiver.wait_for(lambda: len(receiver.of("message.stored", conv=f"g{gid}")) >= 22, timeout=30)
        await asyncio.sleep(0.5)
    finally:
        await asyncio.to_thread(server.stop)
        await receiver.stop()
    logged = server.log_path.read_text(errors="replace")
    assert "server_api" in logged and "imk_" not in logged and key not in logged and receiver.secret not in logged
    stored = receiver.of("message.stored", conv=f"g{gid}")
    assert in_order(stored) == list(range(1, 23))
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids))
    assert receiver.rejected_signatures == 0


async def test_friend_request_recall_and_membership_events(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
    await migrate(url)
    receiver = Receiver("", free_port())
    async with running(hook_settings(tmp_path, url)) as client:
        svc = client.server.app[SERVICES]
        await receiving(svc, receiver, "friend.request,message.recalled,group.member")
        try:
            a, b = await make_user(client), await make_user(client)
            await befriend(client, a, b)
            sa = await connect(client, a)
            await sa.send(cmd=10, dstid=b.id, media=1, content="oops", cid="r1")
            ack = await sa.reply()
            await sa.send(cmd=25, id=ack["id"], rid="q1")
            await sa.recv_until(lambda f: f.get("cmd") == 36)
            await sa.close()
            key = await make_key(client)
            await provisioned(client, key, "ann")
            await provisioned(client, key, "bob")
            _, g = await call(client, key, "POST", "/groups", {"owner": "ann", "name": "g", "members": ["bob"]})
            await call(client, key, "PUT", f"/groups/{g['data']['id']}/members/bob", {"role": "admin"})
            await call(client, key, "DELETE", f"/groups/{g['data']['id']}/members/bob")
            await receiver.wait_for(lambda: len(receiver.of("group.member")) >= 4
                                    and bool(receiver.of("message.recalled")))
        finally:
            await receiver.stop()
    requests = receiver.of("friend.request")
    assert [e["data"]["event"] for e in requests][:2] == ["received", "accepted"], requests
    assert {e["data"]["request"]["fromid"] for e in requests} == {a.id}
    (recalled,) = receiver.of("message.recalled")
    assert recalled["data"]["id"] == ack["id"] and recalled["data"]["userid"] == a.id
    assert [e["data"]["change"] for e in receiver.of("group.member")] == ["created", "joined", "role", "removed"]
    assert receiver.of("group.member", change="role")[0]["data"]["role"] == "admin"
    assert not receiver.of("message.stored")  # not subscribed


async def test_retries_are_bounded_then_the_conversation_moves_on(tmp_path: Path) -> None:
    """An event the endpoint keeps refusing is retried with backoff until
    IMHUB_WEBHOOK_RETRY_SECONDS, then given up; the next event of its conversation,
    held back meanwhile, goes."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
    await migrate(url)
    receiver = Receiver("", free_port())
    attempts: list[float] = []

    async def refuse_poison(event: dict[str, Any]) -> web.Response:
        if event["data"].get("content") == "poison":
            attempts.append(asyncio.get_running_loop().time())
            return web.Response(status=503)
        receiver.events.append(event)
        return web.Response(text="ok")

    receiver.handler = refuse_poison
    async with running(hook_settings(tmp_path, url, webhook_retry_seconds=1)) as client:
        svc = client.server.app[SERVICES]
        await receiving(svc, receiver, "message.stored")
        try:
            key = await make_key(client)
            await provisioned(client, key, "ann")
            _, g = await call(client, key, "POST", "/groups", {"owner": "ann", "name": "g"})
            conv = f"g{g['data']['id']}"
            for i, text in enumerate(("poison", "after")):
                await call(client, key, "POST", "/messages",
                           {"from": "ann", "to_group": g["data"]["id"], "content": text, "cid": f"p{i}"})
            await receiver.wait_for(lambda: bool(receiver.of("message.stored", content="after")))
            assert (await svc.webhooks.outbox_states()).get("failed") == 1
        finally:
            await receiver.stop()
    # Retried (0.05 s doubling to 0.3 s), not hammered every 0.05 s poll for 1 s (~20).
    assert 3 <= len(attempts) <= 10, attempts
    assert in_order(receiver.of("message.stored", conv=conv)) == [1, 3]  # 1: "created"; 2 given up


async def test_an_endpoint_added_elsewhere_is_not_mistaken_for_a_removed_one(db_url: str, tmp_path: Path) -> None:
    """Process A knows a new endpoint before the draining process B has looked again:
    B must deliver A's events, not give them up."""
    settings = hook_settings(tmp_path, db_url)
    receiver = Receiver("", free_port())
    dbs = [Database(db_url), Database(db_url)]
    a, b = (WebhookService(settings, WebhookStore(db), f"node-{i}") for i, db in enumerate(dbs))
    await receiver.start()
    try:
        _, receiver.secret = await a.add(receiver.url, "user.online")
        await a.refresh()
        a.emit("user.online", "u1", {"userid": 1})
        await asyncio.sleep(0.3)  # written and settled
        b._endpoints = [(await a.add("https://unused.example.com/h", "user.offline"))[0]]  # an old list
        await b._drain()
        assert len(receiver.of("user.online")) == 1
    finally:
        await a.stop()
        await b.stop()
        for db in dbs:
            await db.dispose()
        await receiver.stop()


@contextlib.asynccontextmanager
async def ann_in_a_group(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Any, Callable[[str], Awaitable[None]]]]:
    """A running server whose catch-up looks every 0.1 s at messages of any age; yields
    its services and ``say(text)``, which posts ``text`` as ann to a group of hers and
    returns in a later millisecond (an endpoint added next is newer than the message:
    the catch-up compares millisecond timestamps)."""
    monkeypatch.setattr("imhub.services.webhooks.RECONCILE_SECONDS", 0.1)
    monkeypatch.setattr("imhub.services.webhooks.RECONCILE_SETTLE_MS", 0)
    async with running(hook_settings(tmp_path, db_url)) as client:
        key = await make_key(client)
        await provisioned(client, key, "ann")
        _, g = await call(client, key, "POST", "/groups", {"owner": "ann", "name": "g"})

        async def say(text: str) -> None:
            await call(client, key, "POST", "/messages",
                       {"from": "ann", "to_group": g["data"]["id"], "content": text, "cid": text})
            await asyncio.sleep(0.002)

        yield client.server.app[SERVICES], say


async def test_message_events_lost_before_the_outbox_are_caught_up(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between a message's commit and its outbox write loses the live event;
    the drainer finds the message in the messages table and enqueues it (same event
    id as the live path: never twice)."""
    receiver = Receiver("", free_port())
    async with ann_in_a_group(db_url, tmp_path, monkeypatch) as (svc, say):
        await say("before")
        await receiving(svc, receiver, "message.stored")
        try:
            # Whether the drainer's first catch-up round comes before or after these, it
            # starts after "before" (stored before the endpoint existed: not sent).
            live = list(svc.messaging.stored_listeners)
            svc.messaging.stored_listeners.clear()  # as if the process died after each commit
            for i in range(3):
                await say(f"lost{i}")
            svc.messaging.stored_listeners.extend(live)
            await say("live")
            await receiver.wait_for(lambda: len(receiver.of("message.stored")) >= 4)
            await asyncio.sleep(0.5)
        finally:
            await receiver.stop()
    contents = sorted(e["data"]["content"] for e in receiver.of("message.stored"))
    assert contents == ["live", "lost0", "lost1", "lost2"]
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == len(set(ids)) == 4


async def test_messages_stored_before_the_drainer_saw_the_first_endpoint_are_caught_up(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first endpoint, added by another process (`imhub webhook add`): messages
    stored before this one reads the endpoint list are not emitted live, and the
    catch-up's first round must not skip them (only what was stored before the
    endpoint existed is the past)."""
    monkeypatch.setattr("imhub.services.webhooks.ENDPOINT_REFRESH_SECONDS", 3600.0)  # looks once, at start
    receiver = Receiver("", free_port())
    async with ann_in_a_group(db_url, tmp_path, monkeypatch) as (svc, say):
        await say("past")
        _, receiver.secret = await svc.webhooks.add(receiver.url, "message.stored")  # not refreshed: as the CLI
        await receiver.start()
        try:
            for i in range(2):
                await say(f"unseen{i}")
            await svc.webhooks.refresh()  # the drainer looks at last
            await receiver.wait_for(lambda: len(receiver.of("message.stored")) >= 2)
            await asyncio.sleep(0.3)  # nothing more (not "past", no duplicate)
        finally:
            await receiver.stop()
    assert sorted(e["data"]["content"] for e in receiver.of("message.stored")) == ["unseen0", "unseen1"]


async def test_edits_are_message_edited_and_private_updates_stay_private(tmp_path: Path) -> None:
    """Updates (media 11) are not new messages: an edit is a message.edited event with
    the new text; reactions and a user's own stream (delete for me) send nothing."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'imhub.db'}"
    await migrate(url)
    receiver = Receiver("", free_port())
    async with running(hook_settings(tmp_path, url)) as client:
        svc = client.server.app[SERVICES]
        await receiving(svc, receiver, "*")
        try:
            a, b = await make_user(client), await make_user(client)
            await befriend(client, a, b)
            sa = await connect(client, a)
            await sa.send(cmd=10, dstid=b.id, media=1, content="helo", cid="e1")
            ack = await sa.reply()
            await sa.send(cmd=50, id=ack["id"], content="hello", rid="q1")
            await sa.recv_until(lambda f: f.get("rid") == "q1")
            await sa.send(cmd=51, id=ack["id"], emoji="👍", rid="q2")
            await sa.send(cmd=52, ids=[ack["id"]], rid="q3")
            await sa.recv_until(lambda f: f.get("rid") == "q3")
            await sa.send(cmd=10, dstid=b.id, media=1, content="after", cid="e2")
            await sa.recv_until(lambda f: f.get("cid") == "e2")
            await sa.close()
            await receiver.wait_for(lambda: len(receiver.of("message.stored")) >= 2
                                    and bool(receiver.of("message.edited")))
        finally:
            await receiver.stop()
    stored = receiver.of("message.stored")
    assert [e["data"]["content"] for e in stored] == ["helo", "after"], stored
    (edited,) = receiver.of("message.edited")
    assert edited["data"]["id"] == ack["id"] and edited["data"]["content"] == "hello"
    assert edited["data"]["userid"] == a.id and edited["data"]["edited_at"] > 0
