"""The one error type every layer raises for a refused request.

:class:`Refused` carries a stable :class:`ErrorCode` (number and name, documented in
docs/protocol.md), a human-readable message, and the HTTP status it maps to. Services
raise it without knowing who asked: ``imhub.web.responses`` renders it as the seed's
``{code:-1,msg}`` envelope with ``status``; ``imhub.protocol.frames.encode_error``
renders it as a cmd 99 error frame. The subclasses are shorthands for common cases.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """(numeric code, name) pairs; both are stable and documented."""

    BAD_JSON = (4000, "bad_json")
    BAD_FRAME = (4001, "bad_frame")
    UNKNOWN_CMD = (4002, "unknown_cmd")
    UNKNOWN_MEDIA = (4003, "unknown_media")
    FRAME_TOO_LARGE = (4004, "frame_too_large")
    FORGED_USERID = (4005, "forged_userid")
    BAD_QUERY = (4006, "bad_query")
    BAD_URL = (4007, "bad_url")
    # A business refusal without a more specific code (HTTP routes of the seed's API:
    # "mobile already registered", "wrong password", ...): ``msg`` says what.
    REFUSED = (4009, "refused")
    UNAUTHORIZED = (4010, "unauthorized")
    NOT_FRIEND = (4030, "not_friend")
    NOT_MEMBER = (4031, "not_member")
    NOT_YOURS = (4032, "not_yours")
    RECALL_EXPIRED = (4033, "recall_window_passed")
    NOT_IN_CONVERSATION = (4034, "not_in_conversation")
    FORBIDDEN = (4035, "forbidden")
    EDIT_EXPIRED = (4036, "edit_window_passed")
    NOT_EDITABLE = (4037, "not_editable")
    TOO_MANY_REACTIONS = (4038, "too_many_reactions")
    TOO_MANY_PINS = (4039, "too_many_pins")
    # The before-send webhook refused the message (docs/server-api.md).
    REJECTED = (4043, "rejected")
    UNKNOWN_TARGET = (4040, "unknown_target")
    UNKNOWN_MESSAGE = (4041, "unknown_message")
    NOT_FOUND = (4042, "not_found")
    # Consent and membership (the /contact/* and /user/privacy routes).
    BAD_PARAM = (4600, "bad_param")
    UNKNOWN_USER = (4601, "unknown_user")
    SELF_REQUEST = (4602, "self_request")
    ALREADY_FRIENDS = (4603, "already_friends")
    DUPLICATE_REQUEST = (4604, "duplicate_request")
    UNKNOWN_REQUEST = (4605, "unknown_request")
    REQUEST_DECIDED = (4606, "request_decided")
    REQUEST_EXPIRED = (4607, "request_expired")
    NOT_FRIENDS = (4608, "not_friends")
    YOU_BLOCKED = (4609, "you_blocked")
    NOT_BLOCKED = (4610, "not_blocked")
    DEACTIVATED = (4611, "deactivated")
    UNKNOWN_GROUP = (4620, "unknown_group")
    ALREADY_MEMBER = (4621, "already_member")
    ROLE_REQUIRED = (4623, "role_required")
    BANNED = (4624, "banned")
    INVITE_REQUIRED = (4625, "invite_required")
    UNKNOWN_INVITE = (4626, "unknown_invite")
    INVITE_REVOKED = (4627, "invite_revoked")
    INVITE_EXPIRED = (4628, "invite_expired")
    GROUP_FULL = (4629, "group_full")
    ALREADY_REQUESTED = (4630, "already_requested")
    NO_JOIN_REQUEST = (4631, "no_join_request")
    OWNER_FIXED = (4632, "owner_fixed")
    NOT_BANNED = (4633, "not_banned")
    TOO_MANY_GROUPS = (4634, "too_many_groups")
    # Uploads (/attach/upload): the kind's size cap (HTTP 413), a type we do not take.
    MEDIA_TOO_LARGE = (4130, "media_too_large")
    UNSUPPORTED_MEDIA = (4150, "unsupported_media")
    SEQ_BEYOND_END = (4220, "seq_beyond_end")
    RATE_LIMITED = (4290, "rate_limited")
    INTERNAL = (5000, "internal")
    OVERLOADED = (5030, "overloaded")
    # A fail-closed before-send webhook did not answer in time.
    HOOK_UNAVAILABLE = (5031, "hook_unavailable")

    @property
    def number(self) -> int:
        return self.value[0]

    @property
    def label(self) -> str:
        return self.value[1]


class Refused(Exception):
    """A refused request: ``code`` and ``msg`` for every client; ``status`` for HTTP;
    ``cid``/``rid`` tie a WebSocket error frame to the request; ``extra`` fields are
    added to the HTTP envelope (e.g. ``retry_after``)."""

    def __init__(
        self,
        code: ErrorCode,
        msg: str,
        *,
        status: int = 200,
        cid: str | None = None,
        rid: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.cid = cid
        self.rid = rid
        self.extra = extra


class ApiError(Refused):
    """A business refusal of an HTTP route (``code`` REFUSED, HTTP 200 unless given)."""

    def __init__(self, msg: str, status: int = 200, **extra: Any) -> None:
        super().__init__(ErrorCode.REFUSED, msg, status=status, **extra)


class Unauthorized(Refused):
    def __init__(self, msg: str = "not logged in or token expired") -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, msg, status=401)


class Forbidden(Refused):
    def __init__(self, msg: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, msg, status=403)


class NotFound(Refused):
    def __init__(self, msg: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, msg, status=404)


class RateLimited(Refused):
    def __init__(self, msg: str = "too many attempts, try again later", retry_after: int = 60) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, msg, status=429, retry_after=retry_after)
