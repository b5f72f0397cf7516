"""Group roles, join policies, join requests, invitations, bans and the size limit
under the default policies (issue #14), on SQLite and PostgreSQL. Every refusal is
checked for its code and for changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from imhub.app import SERVICES
from imhub.config import Settings
from imhub.store.tables import group_invites
from tests.integration.chatkit import User, api, connect, make_group, make_user


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, max_group_members=4)


def refused(body: dict[str, Any], error: str) -> bool:
    return body["code"] == -1 and body.get("error") == error and bool(body["msg"])


async def member_ids(client, who: User, gid: int) -> list[int]:
    return [m["id"] for m in (await api(client, "/contact/members", who, dstid=gid))["rows"]]


async def test_default_group_needs_approval_shown_live_to_admins(client) -> None:
    owner, admin, joiner, member = [await make_user(client) for _ in range(4)]
    created = await api(client, "/contact/createcommunity", owner, name="team")
    assert (created["data"]["joinpolicy"], created["data"]["visibility"]) == ("approval", "joined")
    gid = created["data"]["id"]
    body = await api(client, "/contact/joincommunity", admin, dstid=gid)
    assert body["data"]["pending"] is True and body["msg"] == "join request sent"
    await api(client, "/contact/approvejoin", owner, dstid=gid, memberid=admin.id)
    assert (await api(client, "/contact/setrole", owner, dstid=gid, memberid=admin.id, role="admin"))["code"] == 0
    so, sa = await connect(client, owner), await connect(client, admin)
    body = await api(client, "/contact/joincommunity", joiner, dstid=gid)
    assert body["data"]["pending"] is True
    for sock in (so, sa):
        event = await sock.recv_until(lambda f: f["cmd"] == 42)
        assert (event["event"], event["groupid"], event["userid"]) == ("join_request", gid, joiner.id)
    assert refused(await api(client, "/contact/joincommunity", joiner, dstid=gid), "already_requested")
    assert joiner.id not in await member_ids(client, owner, gid)
    listed = await api(client, "/contact/joinrequests", admin, dstid=gid)
    assert [u["id"] for u in listed["rows"]] == [joiner.id]
    # A plain member cannot see or decide requests.
    await api(client, "/contact/joincommunity", member, dstid=gid)
    await api(client, "/contact/approvejoin", admin, dstid=gid, memberid=member.id)
    r = await client.post("/contact/approvejoin", data={"dstid": gid, "memberid": joiner.id}, headers=member.auth)
    assert r.status == 403 and (await r.json())["error"] == "role_required"
    r = await client.post("/contact/joinrequests", data={"dstid": gid}, headers=member.auth)
    assert r.status == 403
    assert (await api(client, "/contact/approvejoin", admin, dstid=gid, memberid=joiner.id))["code"] == 0
    assert joiner.id in await member_ids(client, owner, gid)
    assert refused(await api(client, "/contact/approvejoin", admin, dstid=gid, memberid=joiner.id), "no_join_request")


async def test_decline_and_cancel_join_requests(client) -> None:
    owner, a, b = [await make_user(client) for _ in range(3)]
    gid = await make_group(client, owner)
    await api(client, "/contact/joincommunity", a, dstid=gid)
    await api(client, "/contact/joincommunity", b, dstid=gid)
    assert (await api(client, "/contact/declinejoin", owner, dstid=gid, memberid=a.id))["code"] == 0
    assert (await api(client, "/contact/canceljoin", b, dstid=gid))["code"] == 0
    assert refused(await api(client, "/contact/canceljoin", b, dstid=gid), "no_join_request")
    assert refused(await api(client, "/contact/declinejoin", owner, dstid=gid, memberid=a.id), "no_join_request")
    assert (await api(client, "/contact/joinrequests", owner, dstid=gid))["total"] == 0
    assert await member_ids(client, owner, gid) == [owner.id]


async def test_invite_only_group_links_and_personal_invites(client) -> None:
    owner, stranger, friend, linked = [await make_user(client) for _ in range(4)]
    gid = await make_group(client, owner, joinpolicy="invite")
    assert refused(await api(client, "/contact/joincommunity", stranger, dstid=gid), "invite_required")
    assert refused(await api(client, "/contact/joincommunity", stranger, dstid=gid, token="nope"), "unknown_invite")
    # A personal invitation, shown live to the invitee.
    sf = await connect(client, friend)
    inv = await api(client, "/contact/invite", owner, dstid=gid, memberid=friend.id)
    assert inv["code"] == 0 and inv["data"]["inviteeid"] == friend.id
    event = await sf.recv_until(lambda f: f["cmd"] == 42)
    assert (event["event"], event["groupid"]) == ("invited", gid)
    assert refused(await api(client, "/contact/joincommunity", stranger, dstid=gid), "invite_required")
    assert (await api(client, "/contact/joincommunity", friend, dstid=gid))["msg"] == "joined the group"
    # A link: anyone with the token joins (by token alone) until it is revoked.
    link = (await api(client, "/contact/invitelink", owner, dstid=gid))["data"]
    assert len(link["token"]) >= 32 and link["url"].endswith("/join/" + link["token"])
    joined = await api(client, "/contact/joincommunity", linked, token=link["token"])
    assert joined["code"] == 0 and joined["data"]["id"] == gid
    listed = (await api(client, "/contact/loadinvites", owner, dstid=gid))["rows"]
    assert {i["id"]: i["uses"] for i in listed}[link["id"]] == 1 and all("token" not in i for i in listed)
    assert (await api(client, "/contact/revokeinvite", owner, dstid=gid, id=link["id"]))["code"] == 0
    assert refused(await api(client, "/contact/revokeinvite", owner, dstid=gid, id=link["id"]), "invite_revoked")
    assert refused(await api(client, "/contact/joincommunity", stranger, token=link["token"]), "invite_revoked")
    # Expired links, and a link of another group.
    other = await make_group(client, owner, joinpolicy="invite")
    link2 = (await api(client, "/contact/invitelink", owner, dstid=gid, ttl=60))["data"]
    assert refused(await api(client, "/contact/joincommunity", stranger, dstid=other, token=link2["token"]),
                   "unknown_invite")
    expire = update(group_invites).where(group_invites.c.id == link2["id"]).values(expires=1)
    await client.app[SERVICES].db.execute(expire)
    assert refused(await api(client, "/contact/joincommunity", stranger, token=link2["token"]), "invite_expired")
    assert refused(await api(client, "/contact/revokeinvite", owner, dstid=other, id=link2["id"]), "unknown_invite")
    # Members without a role cannot invite.
    r = await client.post("/contact/invitelink", data={"dstid": gid}, headers=friend.auth)
    assert r.status == 403 and (await r.json())["error"] == "role_required"
    assert stranger.id not in await member_ids(client, owner, gid)


async def test_removed_member_is_banned_until_unbanned(client) -> None:
    owner, intruder = await make_user(client), await make_user(client)
    gid = await make_group(client, owner, joinpolicy="open")
    assert (await api(client, "/contact/joincommunity", intruder, dstid=gid))["code"] == 0
    assert (await api(client, "/contact/removemember", owner, dstid=gid, memberid=intruder.id))["code"] == 0
    assert refused(await api(client, "/contact/joincommunity", intruder, dstid=gid), "banned")
    link = (await api(client, "/contact/invitelink", owner, dstid=gid))["data"]
    assert refused(await api(client, "/contact/joincommunity", intruder, token=link["token"]), "banned")
    assert refused(await api(client, "/contact/invite", owner, dstid=gid, memberid=intruder.id), "banned")
    bans = await api(client, "/contact/loadbans", owner, dstid=gid)
    assert [(b["id"], b["bannedby"]) for b in bans["rows"]] == [(intruder.id, owner.id)]
    assert await member_ids(client, owner, gid) == [owner.id]
    assert (await api(client, "/contact/unban", owner, dstid=gid, memberid=intruder.id))["code"] == 0
    assert refused(await api(client, "/contact/unban", owner, dstid=gid, memberid=intruder.id), "not_banned")
    assert (await api(client, "/contact/joincommunity", intruder, dstid=gid))["code"] == 0


async def test_roles_settings_and_size_limit(client) -> None:
    owner, admin, m1, m2, extra = [await make_user(client) for _ in range(5)]
    gid = await make_group(client, owner, admin, m1, m2)  # 4 = max_group_members
    assert refused(await api(client, "/contact/setrole", owner, dstid=gid, memberid=admin.id, role="king"),
                   "bad_param")
    assert refused(await api(client, "/contact/setrole", owner, dstid=gid, memberid=owner.id, role="member"),
                   "owner_fixed")
    assert refused(await api(client, "/contact/setrole", owner, dstid=gid, memberid=extra.id, role="admin"),
                   "not_member")
    r = await client.post("/contact/setrole", data={"dstid": gid, "memberid": m1.id, "role": "admin"},
                          headers=m2.auth)
    assert r.status == 403 and (await r.json())["error"] == "role_required"
    assert (await api(client, "/contact/setrole", owner, dstid=gid, memberid=admin.id, role="admin"))["code"] == 0
    roles = {m["id"]: m["role"] for m in (await api(client, "/contact/members", m1, dstid=gid))["rows"]}
    assert roles == {owner.id: "owner", admin.id: "admin", m1.id: "member", m2.id: "member"}
    # Settings are the owner's.
    r = await client.post("/contact/groupsettings", data={"dstid": gid, "joinpolicy": "open"}, headers=admin.auth)
    assert r.status == 403
    assert refused(await api(client, "/contact/groupsettings", owner, dstid=gid, joinpolicy="free"), "bad_param")
    assert refused(await api(client, "/contact/groupsettings", owner, dstid=gid, visibility="all"), "bad_param")
    body = await api(client, "/contact/groupsettings", owner, dstid=gid, joinpolicy="open", visibility="shared")
    assert (body["data"]["joinpolicy"], body["data"]["visibility"]) == ("open", "shared")
    # Full: nobody else gets in, by any route.
    assert refused(await api(client, "/contact/joincommunity", extra, dstid=gid), "group_full")
    # Admins remove members, not the owner or other admins.
    assert refused(await api(client, "/contact/removemember", admin, dstid=gid, memberid=owner.id), "owner_fixed")
    await api(client, "/contact/setrole", owner, dstid=gid, memberid=m2.id, role="admin")
    r = await client.post("/contact/removemember", data={"dstid": gid, "memberid": m2.id}, headers=admin.auth)
    assert r.status == 403
    assert (await api(client, "/contact/removemember", admin, dstid=gid, memberid=m1.id))["code"] == 0
    assert refused(await api(client, "/contact/removemember", admin, dstid=gid, memberid=m1.id), "not_member")
    assert refused(await api(client, "/contact/joincommunity", extra, dstid=99999), "unknown_group")
    assert (await api(client, "/contact/joincommunity", extra, dstid=gid))["code"] == 0


async def test_group_limits_are_rate_limited(client) -> None:
    owner, joiner = await make_user(client), await make_user(client)
    groups = [await make_group(client, owner, joinpolicy="open") for _ in range(3)]
    client.app[SERVICES].groups.join_limiter_user.limit = 2
    for gid in groups[:2]:
        assert (await api(client, "/contact/joincommunity", joiner, dstid=gid))["code"] == 0
    r = await client.post("/contact/joincommunity", data={"dstid": groups[2]}, headers=joiner.auth)
    body = await r.json()
    assert r.status == 429 and body["error"] == "rate_limited" and body["retry_after"] > 0
    client.app[SERVICES].groups.invite_limiter_user.limit = 1
    assert (await api(client, "/contact/invitelink", owner, dstid=groups[0]))["code"] == 0
    r = await client.post("/contact/invitelink", data={"dstid": groups[0]}, headers=owner.auth)
    assert r.status == 429


async def test_invite_link_shows_its_group_before_joining(client) -> None:
    owner, guest = await make_user(client), await make_user(client)
    gid = await make_group(client, owner, joinpolicy="invite")
    link = (await api(client, "/contact/invitelink", owner, dstid=gid))["data"]
    shown = await api(client, "/contact/invitegroup", guest, token=link["token"])
    assert shown["code"] == 0 and shown["data"]["id"] == gid and "role" not in shown["data"]
    assert guest.id not in await member_ids(client, owner, gid)  # looking is not joining
    assert (await api(client, "/contact/invitegroup", owner, token=link["token"]))["data"]["role"] == "owner"
    assert refused(await api(client, "/contact/invitegroup", guest, token="x" * 32), "unknown_invite")
    r = await client.post("/contact/invitegroup", data={}, headers=guest.auth)
    assert r.status < 500 and (await r.json())["code"] == -1, await r.text()
    await api(client, "/contact/revokeinvite", owner, dstid=gid, id=link["id"])
    assert refused(await api(client, "/contact/invitegroup", guest, token=link["token"]), "invite_revoked")
    client.session.cookie_jar.clear()  # the last login's cookie
    r = await client.post("/contact/invitegroup", data={"token": link["token"]})
    assert r.status == 401
