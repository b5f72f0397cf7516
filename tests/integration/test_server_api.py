"""The server API (/server/v1/, issue #20 part 1): API keys with scopes and a rate
limit, users provisioned by ext_id and logged in by tokens from the API, messages sent
through the same path as socket sends, groups, reads, the audit log."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from imhub.app import build_app
from imhub.config import Settings
from imhub.ratelimit import SlidingWindowLimiter
from imhub.store.migrate import migrate
from imhub.web.context import SERVICES
from tests.integration.chatkit import api, connect, is_msg
from tests.integration.serverapi import call, make_key, provisioned


async def test_keys_authenticate_scope_and_revoke(client: TestClient) -> None:
    status, body = await call(client, "", "GET", "/users/nobody")
    assert status == 401 and body["error"] == "unauthorized"
    status, _ = await call(client, "imk_" + "x" * 43, "GET", "/users/nobody")
    assert status == 401
    reader = await make_key(client, "read")
    status, body = await call(client, reader, "POST", "/users", {"ext_id": "alice"})
    assert status == 403 and "users" in body["msg"]
    status, body = await call(client, reader, "GET", "/users/alice")
    assert status == 404 and body["error"] == "unknown_user"
    keys = client.server.app[SERVICES].apikeys
    (row,) = [k for k in await keys.keys() if k.scopes == frozenset({"read"})]
    await keys.revoke(row.id)
    status, _ = await call(client, reader, "GET", "/users/alice")
    assert status == 401


async def test_provision_is_idempotent_and_passwordless(client: TestClient) -> None:
    key = await make_key(client)
    status, first = await call(client, key, "POST", "/users", {"ext_id": "u-1", "nickname": "Ann"})
    assert status == 200 and first["data"]["created"] is True and first["data"]["nickname"] == "Ann"
    status, again = await call(client, key, "POST", "/users", {"ext_id": "u-1", "nickname": "Other"})
    assert again["data"]["created"] is False and again["data"]["id"] == first["data"]["id"]
    status, body = await call(client, key, "POST", "/users", {"ext_id": "imhub:system"})
    assert status == 400
    status, body = await call(client, key, "POST", "/users", {"ext_id": "a/b"})
    assert status == 400
    # No password login: the stored mobile is a placeholder no login accepts.
    user = await client.server.app[SERVICES].users.get(first["data"]["id"])
    assert user is not None
    for passwd in ("", "!", "secret12"):
        login = await api(client, "/user/login", mobile=user.mobile, passwd=passwd)
        assert login["code"] == -1
    status, body = await call(client, key, "PATCH", "/users/u-1", {"nickname": "Anna"})
    assert status == 200 and body["data"]["nickname"] == "Anna" and body["data"]["ext_id"] == "u-1"


async def test_tokens_log_in_and_revocation_closes_sockets(client: TestClient) -> None:
    key = await make_key(client)
    ann = await provisioned(client, key, "ann")
    me = await (await client.post("/user/me", headers=ann.auth)).json()
    assert me["code"] == 0 and me["data"]["id"] == ann.id
    sock = await connect(client, ann)
    status, _ = await call(client, key, "DELETE", "/users/ann/tokens")
    assert status == 200
    closed = await sock.recv_close()
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert (await client.post("/user/me", headers=ann.auth)).status == 401

    ann = await provisioned(client, key, "ann")
    sock = await connect(client, ann)
    status, body = await call(client, key, "POST", "/users/ann/deactivate")
    assert status == 200 and body["data"]["active"] is False
    await sock.recv_close()
    status, body = await call(client, key, "POST", "/users/ann/tokens", {})
    assert status == 409 and body["error"] == "deactivated"
    status, body = await call(client, key, "PATCH", "/users/ann", {"active": True})
    assert body["data"]["active"] is True
    status, body = await call(client, key, "POST", "/users/ann/tokens", {"ttl_seconds": 10})
    assert status == 400  # below 60 s
    status, body = await call(client, key, "POST", "/users/ann/tokens", {"ttl_seconds": 120})
    assert status == 200 and body["data"]["ttl_seconds"] == 120


async def test_messages_groups_and_reads(client: TestClient) -> None:
    key = await make_key(client)
    ann, bob, cat = [await provisioned(client, key, n) for n in ("ann", "bob", "cat")]
    status, g = await call(client, key, "POST", "/groups", {"owner": "ann", "name": "crew", "members": ["bob"]})
    assert status == 200, g
    gid = g["data"]["id"]
    assert {(m["ext_id"], m["role"]) for m in g["data"]["members"]} == {("ann", "owner"), ("bob", "member")}
    sock = await connect(client, ann)

    # As a member: live to the others, idempotent by cid.
    msg = {"from": "bob", "to_group": gid, "content": "hello crew", "cid": "m-1"}
    status, sent = await call(client, key, "POST", "/messages", msg)
    assert status == 200 and sent["data"]["duplicate"] is False and sent["data"]["conv"] == f"g{gid}"
    got = await sock.recv_until(is_msg)
    assert got["content"] == "hello crew" and got["userid"] == bob.id
    status, again = await call(client, key, "POST", "/messages", msg)
    assert again["data"]["duplicate"] is True and again["data"]["id"] == sent["data"]["id"]
    await sock.no_frame()

    # Not a member: the user's own rules apply.
    status, body = await call(client, key, "POST", "/messages", {**msg, "from": "cat", "cid": "m-2"})
    assert status == 403 and body["error"] == "not_member"
    # Not friends, 1:1: refused as on the socket.
    status, body = await call(client, key, "POST", "/messages",
                              {"from": "bob", "to_user": "ann", "content": "hi", "cid": "m-3"})
    assert status == 403 and body["error"] == "not_friend"
    # The system account reaches anyone, and the conversation is theirs to sync.
    status, sys_msg = await call(client, key, "POST", "/messages",
                                 {"to_user": "ann", "content": "welcome", "cid": "s-1"})
    assert status == 200, sys_msg
    got = await sock.recv_until(is_msg)
    assert got["content"] == "welcome" and got["userid"] == sys_msg["data"]["userid"]
    status, convs = await call(client, key, "GET", "/users/ann/conversations")
    assert {c["conv"] for c in convs["data"]} == {f"g{gid}", sys_msg["data"]["conv"]}

    status, hist = await call(client, key, "GET", "/users/ann/history", conv=f"g{gid}")
    assert [m["content"] for m in hist["data"]["messages"] if m["media"] != 10] == ["hello crew"]
    status, body = await call(client, key, "GET", "/users/cat/history", conv=f"g{gid}")
    assert status == 403

    status, online = await call(client, key, "POST", "/online", {"ext_ids": ["ann", "bob"]})
    assert online["data"] == {"ann": True, "bob": False}

    # Groups: rename, policies, roles, members.
    status, body = await call(client, key, "PATCH", f"/groups/{gid}", {"name": "crew 2", "join_policy": "invite"})
    assert body["data"]["name"] == "crew 2" and body["data"]["join_policy"] == "invite"
    status, body = await call(client, key, "PUT", f"/groups/{gid}/members/cat", {"role": "admin"})
    assert ("cat", "admin") in {(m["ext_id"], m["role"]) for m in body["data"]["members"]}
    status, body = await call(client, key, "DELETE", f"/groups/{gid}/members/bob")
    assert "bob" not in {m["ext_id"] for m in body["data"]["members"]}
    status, body = await call(client, key, "DELETE", f"/groups/{gid}/members/ann")
    assert status == 409 and body["error"] == "owner_fixed"
    status, body = await call(client, key, "GET", "/groups/999")
    assert status == 404
    await sock.close()
    assert cat.id != ann.id


async def test_rate_limit_per_key_and_audit_log_without_secrets(client: TestClient) -> None:
    client.server.app[SERVICES].apikeys.limiter = SlidingWindowLimiter(5, 60)
    key, other = await make_key(client), await make_key(client, name="other")
    with capture_logs() as logs:
        statuses = []
        for _ in range(6):
            status, body = await call(client, key, "POST", "/users", {"ext_id": "zed"})
            statuses.append(status)
        token_status, tok = await call(client, other, "POST", "/users/zed/tokens", {})
    assert statuses == [200] * 5 + [429] and body["retry_after"] >= 1
    assert token_status == 200
    entries = [e for e in logs if e.get("event") == "server_api"]
    assert len(entries) == 7
    assert [e["status"] for e in entries] == [*statuses, 200]
    assert {e["key_name"] for e in entries} == {"test", "other"} and all(e["key_id"] for e in entries)
    text = repr(logs)
    for secret in (key, other, tok["data"]["token"]):
        assert secret not in text
    # The key is never shown again: listings carry only its prefix.
    rows = await client.server.app[SERVICES].apikeys.keys()
    assert all(key not in repr(r) for r in rows)


async def test_openapi_document_lists_every_route(client: TestClient) -> None:
    doc = await (await client.get("/server/v1/openapi.json")).json()
    routed = {
        (r.method.lower(), r.resource.canonical)
        for r in client.server.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/server/v1/") and r.method != "HEAD"
        and not r.resource.canonical.endswith("openapi.json")
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routed == documented


async def test_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The same rows and transactions on PostgreSQL: provisioning (twice), keys, a send."""
    await migrate(postgres_url)
    app = build_app(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    async with TestClient(TestServer(app)) as pg:
        key = await make_key(pg)
        ann = await provisioned(pg, key, "ann")
        again = await provisioned(pg, key, "ann")
        assert again.id == ann.id
        status, g = await call(pg, key, "POST", "/groups", {"owner": "ann", "name": "pg"})
        assert status == 200, g
        sock = await connect(pg, ann)
        status, sent = await call(pg, key, "POST", "/messages",
                                  {"from": "ann", "to_group": g["data"]["id"], "content": "on pg", "cid": "p1"})
        assert status == 200 and sent["data"]["seq"] >= 1
        status, sys_msg = await call(pg, key, "POST", "/messages", {"to_user": "ann", "content": "sys", "cid": "p2"})
        assert status == 200, sys_msg
        assert (await sock.recv_until(lambda f: is_msg(f) and f["content"] == "sys"))["userid"] != ann.id
        await sock.close()
