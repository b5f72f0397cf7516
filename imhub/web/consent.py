"""HTTP handlers of the consent model (docs/security.md "Who can see what"): friend
requests, blocks, privacy settings and group administration — roles, settings, join
requests, invitations and bans. Same style as ``/contact/*``: POST, form or JSON, the
caller from the session; refusals carry ``error``/``errcode`` (docs/protocol.md)."""

from __future__ import annotations

from aiohttp import web

from imhub.errors import ErrorCode
from imhub.services.consent import request_json
from imhub.services.groups import invite_json
from imhub.services.refusals import refuse
from imhub.store.consent import Privacy
from imhub.web.auth import caller, client_address
from imhub.web.context import services
from imhub.web.params import Params
from imhub.web.people import visible_user, visible_users
from imhub.web.responses import ok, rows
from imhub.web.views import community_json

# --- friend requests ---------------------------------------------------------------


async def friend_requests(request: web.Request) -> web.Response:
    """``box=incoming`` (default) or ``outgoing``: pending requests, newest first,
    each with the other user (public fields) in ``user``."""
    user_id, p = await caller(request)
    box = p.text("box", required=False, default="incoming", max_len=8)
    if box not in ("incoming", "outgoing"):
        raise refuse(ErrorCode.BAD_PARAM, "box must be incoming or outgoing")
    pending = await services(request).consent.requests(user_id, incoming=box == "incoming")
    shown = await visible_users(request, user_id, [u for _, u in pending])
    return rows([{**request_json(r), "user": u} for (r, _), u in zip(pending, shown, strict=True)])


async def accept_friend(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    friend = await services(request).consent.accept(user_id, p.ident("id"))
    return ok(await visible_user(request, user_id, friend), msg="friend added")


async def decline_friend(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).consent.decline(user_id, p.ident("id"))
    return ok(msg="friend request declined")


async def cancel_friend(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).consent.cancel(user_id, p.ident("id"))
    return ok(msg="friend request cancelled")


# --- blocks ------------------------------------------------------------------------


async def block(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).consent.block(user_id, p.ident("dstid"))
    return ok(msg="user blocked")


async def unblock(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).consent.unblock(user_id, p.ident("dstid"))
    return ok(msg="user unblocked")


async def load_blocks(request: web.Request) -> web.Response:
    user_id, _ = await caller(request)
    blocked = await services(request).consent.blocked(user_id)
    return rows(await visible_users(request, user_id, blocked))


# --- privacy -----------------------------------------------------------------------


def _flag(p: Params, name: str) -> bool | None:
    if name not in p or p.text(name, required=False) == "":
        return None
    value = p.text(name, max_len=5).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise refuse(ErrorCode.BAD_PARAM, f"{name} must be 1 or 0")


def privacy_json(s: Privacy) -> dict[str, object]:
    return {"addpolicy": s.add_policy, "findable": s.findable_by_mobile, "showmobile": s.show_mobile}


async def privacy(request: web.Request) -> web.Response:
    """Read, or change what is sent: ``addpolicy`` (nobody|anyone), ``findable``
    (found by mobile), ``showmobile`` (friends see my mobile)."""
    user_id, p = await caller(request)
    consent = services(request).consent
    add_policy = p.text("addpolicy", required=False, max_len=8) or None
    findable, show_mobile = _flag(p, "findable"), _flag(p, "showmobile")
    if add_policy is None and findable is None and show_mobile is None:
        current = await consent.privacy_of(user_id)
    else:
        current = await consent.set_privacy(user_id, add_policy=add_policy, findable=findable, show_mobile=show_mobile)
    return ok(privacy_json(current))


# --- group administration ----------------------------------------------------------


async def group_settings(request: web.Request) -> web.Response:
    """Owner only: ``joinpolicy`` (open|approval|invite), ``visibility`` (joined|shared)."""
    user_id, p = await caller(request)
    group = await services(request).groups.update_settings(
        user_id,
        p.ident("dstid"),
        join_policy=p.text("joinpolicy", required=False, max_len=12) or None,
        history_visibility=p.text("visibility", required=False, max_len=12) or None,
    )
    return ok(community_json(group, role="owner"), msg="group settings saved")


async def set_role(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.set_role(
        user_id, p.ident("dstid"), p.ident("memberid"), p.text("role", max_len=8)
    )
    return ok(msg="role changed")


async def join_requests(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    pending = await services(request).groups.join_requests(user_id, p.ident("dstid"))
    shown = await visible_users(request, user_id, [u for u, _ in pending])
    return rows([{**u, "requested": created} for u, (_, created) in zip(shown, pending, strict=True)])


async def approve_join(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.approve(user_id, p.ident("dstid"), p.ident("memberid"))
    return ok(msg="join request approved")


async def decline_join(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.decline(user_id, p.ident("dstid"), p.ident("memberid"))
    return ok(msg="join request declined")


async def cancel_join(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.cancel_join(user_id, p.ident("dstid"))
    return ok(msg="join request cancelled")


async def invite(request: web.Request) -> web.Response:
    """Invite one user (``memberid``): they may then join whatever the policy."""
    user_id, p = await caller(request)
    inv = await services(request).groups.invite_user(
        user_id, p.ident("dstid"), p.ident("memberid"), ip=client_address(request)
    )
    return ok(invite_json(inv), msg="invitation sent")


async def invite_link(request: web.Request) -> web.Response:
    """A new invite link: ``data.token`` is shown only in this reply; ``data.url`` is
    the web client's join page for it."""
    user_id, p = await caller(request)
    svc = services(request)
    inv, token = await svc.groups.create_link(
        user_id, p.ident("dstid"), ttl_seconds=p.number("ttl", required=False, default=0, min_value=0),
        ip=client_address(request),
    )
    base = svc.settings.public_url.rstrip("/")
    return ok({**invite_json(inv), "token": token, "url": f"{base}/join/{token}"}, msg="invite link created")


async def invite_group(request: web.Request) -> web.Response:
    """The group an invite link ``token`` leads to (the web client's ``/join/<token>``
    page shows it before the user joins); ``role`` is set when the caller is a member."""
    user_id, p = await caller(request)
    svc = services(request)
    group = await svc.groups.link_group(p.text("token", max_len=64))
    role = (await svc.groups.roles(group.id)).get(user_id, "")
    return ok(community_json(group, role=role))


async def load_invites(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    invites = await services(request).groups.invites(user_id, p.ident("dstid"))
    return rows([invite_json(i) for i in invites])


async def revoke_invite(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.revoke(user_id, p.ident("dstid"), p.ident("id"))
    return ok(msg="invitation revoked")


async def load_bans(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    bans = await services(request).groups.bans(user_id, p.ident("dstid"))
    shown = await visible_users(request, user_id, [u for u, _, _ in bans])
    return rows([{**u, "bannedby": by, "banned": at} for u, (_, by, at) in zip(shown, bans, strict=True)])


async def unban(request: web.Request) -> web.Response:
    user_id, p = await caller(request)
    await services(request).groups.unban(user_id, p.ident("dstid"), p.ident("memberid"))
    return ok(msg="ban lifted")


def setup(app: web.Application) -> None:
    add = app.router.add_post
    add("/contact/friendrequests", friend_requests)
    add("/contact/acceptfriend", accept_friend)
    add("/contact/declinefriend", decline_friend)
    add("/contact/cancelfriend", cancel_friend)
    add("/contact/block", block)
    add("/contact/unblock", unblock)
    add("/contact/loadblocks", load_blocks)
    add("/user/privacy", privacy)
    add("/contact/groupsettings", group_settings)
    add("/contact/setrole", set_role)
    add("/contact/joinrequests", join_requests)
    add("/contact/approvejoin", approve_join)
    add("/contact/declinejoin", decline_join)
    add("/contact/canceljoin", cancel_join)
    add("/contact/invite", invite)
    add("/contact/invitelink", invite_link)
    add("/contact/invitegroup", invite_group)
    add("/contact/loadinvites", load_invites)
    add("/contact/revokeinvite", revoke_invite)
    add("/contact/loadbans", load_bans)
    add("/contact/unban", unban)
