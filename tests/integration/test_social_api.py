"""Friends and groups over HTTP, as the seed client calls them, plus the new group
management routes. Each user gets a Bearer token so one test client can act as many.

The server runs with the seed-compatible policies here (IMHUB_FRIEND_POLICY=open,
IMHUB_GROUP_JOIN_POLICY=open, README "Seed compatibility"); the consent model's own
defaults are tested in test_consent_api.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from imhub.app import SERVICES
from imhub.config import Settings

USER_FIELDS = {"id", "mobile", "avatar", "sex", "nickname", "online", "token", "memo", "createat"}
SEED_COMMUNITY_FIELDS = {"id", "name", "ownerid", "icon", "cate", "memo", "createat"}
COMMUNITY_FIELDS = SEED_COMMUNITY_FIELDS | {"joinpolicy", "visibility", "role"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", friend_policy="open", group_join_policy="open")


async def user(client, mobile: str, nickname: str = "") -> dict:
    await client.post("/user/register", data={"mobile": mobile, "passwd": "secret1", "nickname": nickname})
    body = await (await client.post("/user/login", data={"mobile": mobile, "passwd": "secret1"})).json()
    u = body["data"]
    u["h"] = {"Authorization": f"Bearer {u['token']}"}
    return u


async def call(client, path: str, who: dict, **params) -> dict:
    r = await client.post(path, data=params, headers=who["h"])
    assert r.status == 200, (path, r.status, await r.text())
    return await r.json()


async def test_add_friend_mutual_and_load(client) -> None:
    a, b = await user(client, "13800000001", "alice"), await user(client, "13800000002", "bob")
    body = await call(client, "/contact/addfriend", a, userid=a["id"], dstid=b["id"])
    assert body["code"] == 0 and body["data"]["id"] == b["id"]
    for me, other in ((a, b), (b, a)):
        body = await call(client, "/contact/loadfriend", me, userid=me["id"])
        assert body["code"] == 0 and body["total"] == 1
        (row,) = body["rows"]
        assert set(row) == USER_FIELDS and row["id"] == other["id"]
        # A friend's mobile is private unless they opt in (docs/security.md).
        assert row["mobile"] == "" and row["token"] == ""
    assert (await call(client, "/user/privacy", b, showmobile=1))["data"]["showmobile"] is True
    (row,) = (await call(client, "/contact/loadfriend", a))["rows"]
    assert row["mobile"] == b["mobile"]


async def test_add_friend_refusals(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    assert await call(client, "/contact/addfriend", a, userid=a["id"], dstid=a["id"]) == {
        "code": -1, "msg": "you cannot add yourself", "error": "self_request", "errcode": 4602}
    assert await call(client, "/contact/addfriend", a, dstid=99999) == {
        "code": -1, "msg": "no such user", "error": "unknown_user", "errcode": 4601}
    await call(client, "/contact/addfriend", a, dstid=b["id"])
    for who, dst in ((a, b), (b, a)):
        assert await call(client, "/contact/addfriend", who, dstid=dst["id"]) == {
            "code": -1, "msg": "you are already friends", "error": "already_friends", "errcode": 4603}
    assert (await call(client, "/contact/addfriend", a))["msg"] == "dstid is required"
    r = await client.post("/contact/addfriend", data={"userid": b["id"], "dstid": a["id"]}, headers=a["h"])
    assert r.status == 403
    client.session.cookie_jar.clear()
    r = await client.post("/contact/loadfriend", data={"userid": a["id"]})
    assert r.status == 401  # no cookie, no bearer


async def test_delete_friend(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    await call(client, "/contact/addfriend", a, dstid=b["id"])
    assert (await call(client, "/contact/delfriend", b, dstid=a["id"]))["code"] == 0
    assert (await call(client, "/contact/loadfriend", a))["total"] == 0
    assert (await call(client, "/contact/delfriend", b, dstid=a["id"]))["msg"] == "you are not friends"


async def test_friend_online_comes_from_presence(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    await call(client, "/contact/addfriend", a, dstid=b["id"])
    presence = client.app[SERVICES].presence
    await presence.connected(b["id"])
    assert (await call(client, "/contact/loadfriend", a))["rows"][0]["online"] is True
    await presence.disconnected(b["id"])
    assert (await call(client, "/contact/loadfriend", a))["rows"][0]["online"] is False


async def test_create_join_load_community(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    events: list[tuple[int, int, bool]] = []

    async def listener(group_id: int, user_id: int, joined: bool) -> None:
        events.append((group_id, user_id, joined))

    client.app[SERVICES].social.membership_listeners.append(listener)
    body = await call(client, "/contact/createcommunity", a, ownerid=a["id"], name="team", icon="/mnt/i.png",
                      cate=1, memo="hello")
    assert body["code"] == 0 and set(body["data"]) == COMMUNITY_FIELDS
    assert (body["data"]["joinpolicy"], body["data"]["visibility"], body["data"]["role"]) == (
        "open", "joined", "owner")
    g = {k: v for k, v in body["data"].items() if k != "role"}
    assert g["ownerid"] == a["id"] and g["name"] == "team" and g["cate"] == 1 and g["createat"].endswith("Z")
    body = await call(client, "/contact/joincommunity", b, userid=b["id"], dstid=g["id"])
    assert body["code"] == 0
    assert events == [(g["id"], a["id"], True), (g["id"], b["id"], True)]
    assert (await call(client, "/contact/joincommunity", b, dstid=g["id"]))["msg"] == (
        "you are already a member of this group")
    assert (await call(client, "/contact/joincommunity", b, dstid=99999))["msg"] == "no such group"
    for who, role in ((a, "owner"), (b, "member")):
        body = await call(client, "/contact/loadcommunity", who, userid=who["id"])
        assert body["total"] == 1 and body["rows"][0] == {**g, "role": role}
    body = await call(client, "/contact/members", b, dstid=g["id"])
    assert [m["id"] for m in body["rows"]] == [a["id"], b["id"]] and body["total"] == 2
    assert [m["role"] for m in body["rows"]] == ["owner", "member"]
    # b and a are not friends: b does not see a's mobile.
    assert body["rows"][0]["mobile"] == "" and body["rows"][1]["mobile"] == b["mobile"]
    social = client.app[SERVICES].social
    assert await social.member_ids(g["id"]) == [a["id"], b["id"]]
    assert await social.group_ids_of(b["id"]) == [g["id"]]


async def test_create_community_refusals(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    r = await client.post("/contact/createcommunity", data={"ownerid": b["id"], "name": "x"}, headers=a["h"])
    assert r.status == 403 and "ownerid" in (await r.json())["msg"]
    assert (await call(client, "/contact/createcommunity", a))["msg"] == "name is required"
    assert "too long" in (await call(client, "/contact/createcommunity", a, name="n" * 65))["msg"]
    assert "cate" in (await call(client, "/contact/createcommunity", a, name="n", cate=-1))["msg"]


async def test_group_limit_per_owner(client) -> None:
    a = await user(client, "13800000001")
    limit = client.app[SERVICES].settings.max_groups_per_owner
    for i in range(limit):
        assert (await call(client, "/contact/createcommunity", a, name=f"g{i}"))["code"] == 0
    body = await call(client, "/contact/createcommunity", a, name="one too many")
    assert body["code"] == -1 and str(limit) in body["msg"]


async def test_leave_rename_remove(client) -> None:
    a, b, c = [await user(client, f"1380000000{i}") for i in range(3)]
    events: list[tuple[int, int, bool]] = []

    async def listener(group_id: int, user_id: int, joined: bool) -> None:
        events.append((group_id, user_id, joined))

    client.app[SERVICES].social.membership_listeners.append(listener)
    g = (await call(client, "/contact/createcommunity", a, name="team"))["data"]
    for who in (b, c):
        await call(client, "/contact/joincommunity", who, dstid=g["id"])
    events.clear()

    # Owner-only actions.
    r = await client.post("/contact/renamecommunity", data={"dstid": g["id"], "name": "mine"}, headers=b["h"])
    assert r.status == 403
    r = await client.post("/contact/removemember", data={"dstid": g["id"], "memberid": c["id"]}, headers=b["h"])
    assert r.status == 403
    body = await call(client, "/contact/renamecommunity", a, dstid=g["id"], name="renamed")
    assert body["code"] == 0 and body["data"]["name"] == "renamed"

    assert (await call(client, "/contact/leavecommunity", a, dstid=g["id"]))["msg"] == (
        "the owner cannot leave the group")
    assert (await call(client, "/contact/leavecommunity", b, dstid=g["id"]))["code"] == 0
    assert (await call(client, "/contact/leavecommunity", b, dstid=g["id"]))["msg"] == (
        "you are not a member of this group")
    assert (await call(client, "/contact/removemember", a, dstid=g["id"], memberid=c["id"]))["code"] == 0
    assert (await call(client, "/contact/removemember", a, dstid=g["id"], memberid=a["id"]))["code"] == -1
    assert events == [(g["id"], b["id"], False), (g["id"], c["id"], False)]

    # Non-members cannot list members; the group is gone from their list.
    r = await client.post("/contact/members", data={"dstid": g["id"]}, headers=b["h"])
    assert r.status == 403
    assert (await call(client, "/contact/loadcommunity", c))["total"] == 0
    assert [m["id"] for m in (await call(client, "/contact/members", a, dstid=g["id"]))["rows"]] == [a["id"]]


async def test_failing_listener_does_not_fail_the_join(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    seen: list[int] = []

    async def broken(group_id: int, user_id: int, joined: bool) -> None:
        raise RuntimeError("listener bug")

    async def good(group_id: int, user_id: int, joined: bool) -> None:
        seen.append(user_id)

    client.app[SERVICES].social.membership_listeners[:] = [broken, good]
    g = (await call(client, "/contact/createcommunity", a, name="team"))["data"]
    assert (await call(client, "/contact/joincommunity", b, dstid=g["id"]))["code"] == 0
    assert seen == [a["id"], b["id"]]


async def test_json_bodies_work_like_forms(client) -> None:
    a, b = await user(client, "13800000001"), await user(client, "13800000002")
    r = await client.post("/contact/addfriend", json={"userid": str(a["id"]), "dstid": b["id"]}, headers=a["h"])
    assert (await r.json())["code"] == 0
    r = await client.post("/contact/createcommunity", json={"name": "j", "cate": "3"}, headers=a["h"])
    assert (await r.json())["data"]["cate"] == 3
