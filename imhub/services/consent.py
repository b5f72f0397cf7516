"""Consent between users: friend requests, blocks and privacy (docs/security.md
"Who can see what").

- ``addfriend`` makes a friendship at once only when the server runs the seed's
  ``IMHUB_FRIEND_POLICY=open``, when the other user lets anyone add them, or when they
  had already asked us (both sides consented); otherwise it files a request that the
  other user accepts or declines, and both sides see the outcome live (cmd 41).
- A block ends the friendship and any pending request, and is invisible to the blocked
  user: their messages fail as to any non-friend, their requests look sent but never
  arrive, and they cannot find the blocker by mobile.
"""

from __future__ import annotations

from dataclasses import dataclass

from imhub.clock import now_ms
from imhub.config import Settings
from imhub.domain.model import Cmd
from imhub.domain.ngrams import mobile_matches, name_matches
from imhub.errors import ErrorCode
from imhub.ratelimit import SlidingWindowLimiter
from imhub.services.accounts import check_printable
from imhub.services.refusals import rate_limited, refuse
from imhub.services.social import SocialService
from imhub.store.consent import ConsentStore, FriendRequest, Privacy, RequestNotPending
from imhub.store.social import GroupRow
from imhub.store.users import UserRow, UserStore

ADD_POLICIES = ("nobody", "anyone")
REQUEST_MEMO_MAX = 128  # friend_requests.memo is String(128)
# One address may send this many times a user's allowance (people behind one NAT).
PER_ADDRESS_FACTOR = 5
# Friends and groups a search lists at most (each).
CONTACT_HITS = 20


def request_json(r: FriendRequest) -> dict[str, object]:
    return {
        "id": r.id, "fromid": r.from_id, "toid": r.to_id, "status": r.status, "memo": r.memo,
        "created": r.created, "expires": r.expires,
    }


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """``added`` (friends now: ``user`` is the friend) or a ``request`` was filed."""

    user: UserRow
    request: FriendRequest | None

    @property
    def added(self) -> bool:
        return self.request is None


class ConsentService:
    def __init__(self, settings: Settings, users: UserStore, store: ConsentStore, social: SocialService) -> None:
        self._settings = settings
        self._users = users
        self._store = store
        self._social = social
        per_hour = settings.friend_requests_per_hour
        self.request_limiter_user = SlidingWindowLimiter(per_hour, 3600)
        self.request_limiter_ip = SlidingWindowLimiter(per_hour * PER_ADDRESS_FACTOR, 3600)

    # --- questions -----------------------------------------------------------------

    async def privacy_of(self, user_id: int) -> Privacy:
        return await self._store.privacy_of(user_id)

    async def privacy_of_many(self, user_ids: list[int]) -> dict[int, Privacy]:
        return await self._store.privacy_of_many(user_ids)

    async def matching_contacts(self, user_id: int, q: str) -> tuple[list[UserRow], list[GroupRow]]:
        """For a search: the caller's friends whose nickname matches ``q`` or, for those
        who show their mobile to friends, whose mobile does; and the caller's groups
        whose name matches. Nobody else's name or number is looked at."""
        friends = await self._social.friends(user_id)
        privacy = await self._store.privacy_of_many([u.id for u in friends])
        shown = {i for i, p in privacy.items() if p.show_mobile}
        users = [
            u for u in friends if name_matches(u.nickname, q) or (u.id in shown and mobile_matches(u.mobile, q))
        ]
        groups = [g for g in await self._social.groups_of(user_id) if name_matches(g.name, q)]
        return users[:CONTACT_HITS], groups[:CONTACT_HITS]

    async def has_blocked(self, owner_id: int, dst_id: int) -> bool:
        return await self._store.has_blocked(owner_id, dst_id)

    async def findable_by_mobile(self, user_id: int, viewer: int) -> bool:
        """May ``viewer`` find ``user_id`` by phone number?"""
        if user_id == viewer:
            return True
        if not (await self._store.privacy_of(user_id)).findable_by_mobile:
            return False
        return not await self._store.has_blocked(user_id, viewer)

    # --- friend requests -----------------------------------------------------------

    def _limit(self, user_id: int, ip: str) -> None:
        wait = max(self.request_limiter_user.retry_after(user_id), self.request_limiter_ip.retry_after(ip))
        if wait > 0:
            raise rate_limited("too many friend requests, try again later", wait)
        self.request_limiter_user.hit(user_id)
        self.request_limiter_ip.hit(ip)

    async def _target(self, user_id: int, dst_id: int, what: str) -> UserRow:
        if dst_id == user_id:
            raise refuse(ErrorCode.SELF_REQUEST, f"you cannot {what} yourself")
        target = await self._users.get(dst_id)
        if target is None:
            raise refuse(ErrorCode.UNKNOWN_USER, "no such user")
        return target

    async def add_friend(self, user_id: int, dst_id: int, *, memo: str = "", ip: str = "") -> AddOutcome:
        target = await self._target(user_id, dst_id, "add")
        if len(memo) > REQUEST_MEMO_MAX:
            raise refuse(ErrorCode.BAD_PARAM, f"memo is too long (at most {REQUEST_MEMO_MAX} characters)")
        check_printable(memo, "memo")
        if await self._social.are_friends(user_id, dst_id):
            raise refuse(ErrorCode.ALREADY_FRIENDS, "you are already friends")
        if await self._store.has_blocked(user_id, dst_id):
            raise refuse(ErrorCode.YOU_BLOCKED, "you blocked this user; unblock them first")
        mine = await self._store.latest_between(user_id, dst_id)
        if mine is not None and mine.status == "pending":
            raise refuse(ErrorCode.DUPLICATE_REQUEST, "you already sent this user a request; wait for their answer")
        if mine is not None and mine.status == "declined":
            wait_ms = mine.decided + self._settings.friend_rerequest_seconds * 1000 - now_ms()
            if wait_ms > 0:
                raise rate_limited("this user declined your request; you can ask again later", wait_ms / 1000)
        self._limit(user_id, ip)
        hidden = await self._store.has_blocked(dst_id, user_id)
        if not hidden:
            theirs = await self._store.latest_between(dst_id, user_id)
            if theirs is not None and theirs.status == "pending":
                await self._accepted(await self._decide(theirs, "accepted", befriend=True))
                return AddOutcome(target, None)
            open_to_all = (await self._store.privacy_of(dst_id)).add_policy == "anyone"
            if self._settings.friend_policy == "open" or open_to_all:
                await self._social.befriend(user_id, dst_id)
                return AddOutcome(target, None)
        request = await self._store.create_request(
            user_id, dst_id, memo, self._settings.friend_request_ttl_seconds * 1000
        )
        if not hidden:  # a blocked requester's request is filed but never shown
            await self._event((dst_id, user_id), "received", request)
        return AddOutcome(target, request)

    async def _event(self, users: tuple[int, ...], event: str, request: FriendRequest) -> None:
        await self._social.notify(users, Cmd.FRIEND_REQUEST_EVENT, {"event": event, "request": request_json(request)})

    async def _decide(self, request: FriendRequest, status: str, *, befriend: bool = False) -> FriendRequest:
        try:
            return await self._store.decide(request.id, status, befriend=befriend)
        except RequestNotPending as exc:
            raise _not_pending(exc.status) from None

    async def _accepted(self, request: FriendRequest) -> None:
        await self._social.friendship_changed(request.from_id, request.to_id, True)
        await self._event((request.from_id, request.to_id), "accepted", request)

    async def _incoming(self, user_id: int, request_id: int) -> FriendRequest:
        request = await self._store.get_request(request_id)
        if (
            request is None
            or request.to_id != user_id
            or await self._store.has_blocked(user_id, request.from_id)
        ):
            raise refuse(ErrorCode.UNKNOWN_REQUEST, "no such friend request")
        if request.status != "pending":
            raise _not_pending(request.status)
        return request

    async def accept(self, user_id: int, request_id: int) -> UserRow:
        """Accept a request to ``user_id``; returns the new friend."""
        request = await self._incoming(user_id, request_id)
        friend = await self._users.get(request.from_id)
        if friend is None:
            raise refuse(ErrorCode.UNKNOWN_USER, "no such user")
        await self._accepted(await self._decide(request, "accepted", befriend=True))
        return friend

    async def decline(self, user_id: int, request_id: int) -> None:
        request = await self._decide(await self._incoming(user_id, request_id), "declined")
        await self._event((request.from_id, request.to_id), "declined", request)

    async def cancel(self, user_id: int, request_id: int) -> None:
        request = await self._store.get_request(request_id)
        if request is None or request.from_id != user_id:
            raise refuse(ErrorCode.UNKNOWN_REQUEST, "no such friend request")
        if request.status != "pending":
            raise _not_pending(request.status)
        request = await self._decide(request, "cancelled")
        hidden = await self._store.has_blocked(request.to_id, user_id)
        await self._event((user_id,) if hidden else (user_id, request.to_id), "cancelled", request)

    async def requests(self, user_id: int, *, incoming: bool) -> list[tuple[FriendRequest, UserRow]]:
        """Pending requests to (or from) the user with the other side, newest first."""
        pending = await self._store.pending_for(user_id, incoming=incoming)
        if incoming and pending:
            blocked = set(await self._store.blocked_ids(user_id))
            pending = [r for r in pending if r.from_id not in blocked]
        others = [r.from_id if incoming else r.to_id for r in pending]
        by_id = {u.id: u for u in await self._users.get_many(others)}
        return [(r, by_id[o]) for r, o in zip(pending, others, strict=True) if o in by_id]

    # --- blocks --------------------------------------------------------------------

    async def block(self, user_id: int, dst_id: int) -> UserRow:
        target = await self._target(user_id, dst_id, "block")
        await self._store.block(user_id, dst_id)
        await self._store.cancel_pending_between(user_id, dst_id)
        if await self._social.are_friends(user_id, dst_id):
            await self._social.remove_friend(user_id, dst_id)
        return target

    async def unblock(self, user_id: int, dst_id: int) -> None:
        if not await self._store.unblock(user_id, dst_id):
            raise refuse(ErrorCode.NOT_BLOCKED, "you have not blocked this user")

    async def blocked(self, user_id: int) -> list[UserRow]:
        ids = await self._store.blocked_ids(user_id)
        by_id = {u.id: u for u in await self._users.get_many(ids)}
        return [by_id[i] for i in ids if i in by_id]

    # --- privacy -------------------------------------------------------------------

    async def set_privacy(
        self, user_id: int, *, add_policy: str | None, findable: bool | None, show_mobile: bool | None
    ) -> Privacy:
        """Change the settings given (None: leave as is)."""
        current = await self._store.privacy_of(user_id)
        if add_policy is not None and add_policy not in ADD_POLICIES:
            raise refuse(ErrorCode.BAD_PARAM, "addpolicy must be nobody or anyone")
        updated = Privacy(
            add_policy=current.add_policy if add_policy is None else add_policy,
            findable_by_mobile=current.findable_by_mobile if findable is None else findable,
            show_mobile=current.show_mobile if show_mobile is None else show_mobile,
        )
        if updated != current:
            await self._store.set_privacy(user_id, updated)
        return updated


def _not_pending(status: str) -> Exception:
    if status == "expired":
        return refuse(ErrorCode.REQUEST_EXPIRED, "this friend request has expired")
    if status in ("unknown",):
        return refuse(ErrorCode.UNKNOWN_REQUEST, "no such friend request")
    return refuse(ErrorCode.REQUEST_DECIDED, f"this friend request was already {status}")
