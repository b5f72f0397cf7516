"""The OpenAPI 3.1 document served at ``GET /openapi.json``, built from one small
table of operations. Each row says what a route takes and which envelope it returns;
``tests/integration/test_openapi_schemathesis.py`` fuzzes the live server against it
and a unit test checks the table and the router list the same routes.

To document a new POST route, add an :class:`Operation` to ``OPERATIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import orjson
from aiohttp import web

Reply = Literal["message", "user", "users", "community", "communities", "messages", "hits", "rows", "object"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: Literal["string", "integer"] = "string"
    required: bool = False
    max_len: int | None = None
    minimum: int | None = None
    enum: tuple[str, ...] | None = None
    description: str = ""

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": self.kind}
        if self.max_len is not None:
            s["maxLength"] = self.max_len
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.kind == "integer":
            s["maximum"] = 2**63 - 1
        if self.enum is not None:
            s["enum"] = list(self.enum)
        if self.description:
            s["description"] = self.description
        return s


@dataclass(frozen=True)
class Operation:
    path: str
    summary: str
    params: tuple[Param, ...]
    reply: Reply
    tag: str
    auth: bool = True
    rate_limited: bool = False
    description: str = ""
    extra_statuses: tuple[int, ...] = field(default=())


# --- reusable parameters -------------------------------------------------------------

USERID = Param("userid", "integer", minimum=0, description="The caller's id (optional; must be the caller if sent).")
OWNERID = Param("ownerid", "integer", minimum=0, description="The caller's id (optional; must be the caller if sent).")
DSTID_USER = Param("dstid", "integer", required=True, minimum=1, description="The other user's id.")
DSTID_GROUP = Param("dstid", "integer", required=True, minimum=1, description="The group's id.")
MOBILE = Param("mobile", required=True, max_len=20, description="5-20 digits, optional leading +.")
NICKNAME = Param("nickname", max_len=64)
AVATAR = Param("avatar", max_len=512, description="A path starting with / or an http(s) URL.")
SEX = Param("sex", max_len=1, enum=("M", "W", "U"), description="M, W or U.")
MEMO = Param("memo", max_len=512)
GROUP_NAME = Param("name", required=True, max_len=64)
CONV = Param("conv", required=True, max_len=48, description="A conversation id: p<lo>_<hi> or g<group>.")
LIMIT = Param("limit", "integer", minimum=1, description="Page size (capped by the server).")
BEFORE = Param("before", "integer", minimum=1, description="Only older than this (seq for history, id for search).")
REQUEST_ID = Param("id", "integer", required=True, minimum=1, description="The friend request's id.")
MEMBERID = Param("memberid", "integer", required=True, minimum=1, description="The user acted on.")
JOIN_POLICY = Param("joinpolicy", max_len=12, enum=("open", "approval", "invite"))
VISIBILITY = Param("visibility", max_len=12, enum=("joined", "shared"), description="History visibility.")
FLAG = ("1", "0", "true", "false")

OPERATIONS: tuple[Operation, ...] = (
    # --- accounts --------------------------------------------------------------------
    Operation(
        "/user/register", "Create an account", (
            MOBILE, Param("passwd", required=True, max_len=128, description="6-128 characters."),
            NICKNAME, AVATAR, SEX, MEMO,
        ), "user", "accounts", auth=False, rate_limited=True, extra_statuses=(403, 503),
        description="Duplicate mobile: code -1. The reply's token is empty: log in next. "
        "Limited per address (429); 503 with `retry_after` when the password-hashing slots are busy; "
        "403 for a browser that says it comes from another origin (login CSRF).",
    ),
    Operation(
        "/user/login", "Log in", (
            MOBILE, Param("passwd", max_len=128, description="The password (the seed's demo also sent `password`)."),
            Param("password", max_len=128),
        ), "user", "accounts", auth=False, rate_limited=True, extra_statuses=(403,),
        description="Sets the HttpOnly session cookie and the known-device cookie; the reply's `token` is for "
        "the WebSocket and Bearer auth. Failed logins are limited per mobile (a known device has its own "
        "allowance) and per address in distinct accounts; verifications in flight are capped (429 with "
        "`retry_after`). 403 for a browser that says it comes from another origin (login CSRF).",
    ),
    Operation(
        "/user/find", "Find a user by id or mobile", (
            Param("id", "integer", minimum=1), Param("mobile", max_len=20),
        ), "user", "accounts", rate_limited=True,
        description="Send `id` or `mobile`. `mobile` is shown to the user (and to friends if they opted in), "
        "`online` to the user and friends. By mobile only users who allow it (`findable`) are found. "
        "Lookups by mobile are limited to 30 a minute per caller (429).",
    ),
    Operation("/user/me", "The logged-in user", (USERID,), "user", "accounts"),
    Operation(
        "/user/update", "Update the profile", (USERID, NICKNAME, AVATAR, SEX, MEMO), "user", "accounts",
        description="Only the fields sent change.",
    ),
    Operation(
        "/user/logout", "Log out this session", (), "message", "accounts", auth=False, extra_statuses=(403,),
        description="Revokes the token used (cookie or Bearer) and clears the cookie; always succeeds.",
    ),
    Operation(
        "/user/password", "Change the password", (
            USERID, Param("oldpasswd", required=True, max_len=128),
            Param("newpasswd", required=True, max_len=128, description="6-128 characters."),
        ), "user", "accounts", rate_limited=True,
        extra_statuses=(503,),
        description="Logs out every device; the reply carries a new token and sets a new cookie. "
        "503 with `retry_after` when the password-hashing slots are busy.",
    ),
    # --- friends ---------------------------------------------------------------------
    Operation(
        "/contact/addfriend", "Add a friend, or ask to", (
            USERID, DSTID_USER, Param("memo", max_len=128, description="A note shown with the request."),
        ), "user", "friends", rate_limited=True,
        description="Friends at once (msg `friend added`) under IMHUB_FRIEND_POLICY=open, when the other user's "
        "`addpolicy` is `anyone`, or when they had asked us; otherwise a friend request (msg `friend request "
        "sent`, `data.request`). Refusals: `self_request`, `unknown_user`, `already_friends`, "
        "`duplicate_request`, `you_blocked`; 429 `rate_limited` (per user and address, and after a decline).",
    ),
    Operation(
        "/contact/friendrequests", "My pending friend requests", (
            USERID, Param("box", max_len=8, enum=("incoming", "outgoing"), description="Default incoming."),
        ), "rows", "friends",
        description="Rows: {id, fromid, toid, status, memo, created, expires, user}, newest first.",
    ),
    Operation(
        "/contact/acceptfriend", "Accept a friend request", (USERID, REQUEST_ID), "user", "friends",
        description="`unknown_request`, `request_decided` (cancelled, declined, accepted), `request_expired`.",
    ),
    Operation("/contact/declinefriend", "Decline a friend request", (USERID, REQUEST_ID), "message", "friends"),
    Operation("/contact/cancelfriend", "Cancel my friend request", (USERID, REQUEST_ID), "message", "friends"),
    Operation(
        "/contact/delfriend", "Remove a friend (both ways)", (USERID, DSTID_USER), "message", "friends",
        description="`not_friends` if they were not.",
    ),
    Operation("/contact/loadfriend", "List my friends", (USERID,), "users", "friends"),
    Operation(
        "/contact/block", "Block a user", (USERID, DSTID_USER), "message", "friends",
        description="Ends the friendship and pending requests; the blocked user is not told.",
    ),
    Operation(
        "/contact/unblock", "Unblock a user", (USERID, DSTID_USER), "message", "friends",
        description="`not_blocked` if they were not. The friendship does not come back.",
    ),
    Operation("/contact/loadblocks", "Users I blocked", (USERID,), "users", "friends"),
    Operation(
        "/user/privacy", "Read or change my privacy settings", (
            USERID, Param("addpolicy", max_len=8, enum=("nobody", "anyone")),
            Param("findable", max_len=5, enum=FLAG, description="Found by mobile (default 1)."),
            Param("showmobile", max_len=5, enum=FLAG, description="Friends see my mobile (default 0)."),
        ), "object", "accounts",
        description="Only the settings sent change; `data` is all three.",
    ),
    # --- groups ----------------------------------------------------------------------
    Operation(
        "/contact/createcommunity", "Create a group", (
            OWNERID, GROUP_NAME, Param("icon", max_len=512), Param("cate", "integer", minimum=0), MEMO,
            JOIN_POLICY, VISIBILITY,
        ), "community", "groups",
        description="The owner becomes its first member; at most IMHUB_MAX_GROUPS_PER_OWNER groups per owner. "
        "Without `joinpolicy`/`visibility`: IMHUB_GROUP_JOIN_POLICY / IMHUB_GROUP_HISTORY_VISIBILITY.",
    ),
    Operation(
        "/contact/joincommunity", "Join a group (or ask to)", (
            USERID, Param("dstid", "integer", minimum=1, description="The group (not needed with `token`)."),
            Param("token", max_len=64, description="An invite link's token."),
        ), "community", "groups", rate_limited=True,
        description="Joins an `open` group, or any group with an invitation (personal or `token`); in an "
        "`approval` group files a join request (`data.pending`). Refusals: `unknown_group`, `already_member`, "
        "`banned`, `invite_required`, `unknown_invite`, `invite_revoked`, `invite_expired`, `group_full`, "
        "`already_requested`.",
    ),
    Operation("/contact/canceljoin", "Withdraw my join request", (USERID, DSTID_GROUP), "message", "groups"),
    Operation(
        "/contact/groupsettings", "Change join policy / history visibility (owner)", (
            USERID, DSTID_GROUP, JOIN_POLICY, VISIBILITY,
        ), "community", "groups",
    ),
    Operation(
        "/contact/setrole", "Make a member admin or member (owner)", (
            USERID, DSTID_GROUP, MEMBERID, Param("role", required=True, max_len=8, enum=("admin", "member")),
        ), "message", "groups",
    ),
    Operation(
        "/contact/joinrequests", "Pending join requests (owner, admins)", (USERID, DSTID_GROUP), "users", "groups",
    ),
    Operation("/contact/approvejoin", "Approve a join request (owner, admins)", (USERID, DSTID_GROUP, MEMBERID),
              "message", "groups"),
    Operation("/contact/declinejoin", "Decline a join request (owner, admins)", (USERID, DSTID_GROUP, MEMBERID),
              "message", "groups"),
    Operation(
        "/contact/invite", "Invite a user (owner, admins)", (USERID, DSTID_GROUP, MEMBERID), "object", "groups",
        rate_limited=True, description="They may then join whatever the policy; cmd 42 `invited` tells them.",
    ),
    Operation(
        "/contact/invitelink", "Create an invite link (owner, admins)", (
            USERID, DSTID_GROUP, Param("ttl", "integer", minimum=0, description="Seconds (60 to a year)."),
        ), "object", "groups", rate_limited=True,
        description="`data.token` and `data.url` are shown only in this reply.",
    ),
    Operation(
        "/contact/invitegroup", "The group an invite link leads to", (
            USERID, Param("token", required=True, max_len=64, description="The invite link's token."),
        ), "community", "groups",
        description="For a join page shown before joining; `role` is set when the caller is a member. Refusals: "
        "`unknown_invite`, `invite_revoked`, `invite_expired`.",
    ),
    Operation("/contact/loadinvites", "Invitations of a group (owner, admins)", (USERID, DSTID_GROUP), "rows",
              "groups"),
    Operation(
        "/contact/revokeinvite", "Revoke an invitation (owner, admins)", (
            USERID, DSTID_GROUP, Param("id", "integer", required=True, minimum=1),
        ), "message", "groups",
    ),
    Operation("/contact/loadbans", "Banned users (owner, admins)", (USERID, DSTID_GROUP), "users", "groups"),
    Operation("/contact/unban", "Lift a ban (owner, admins)", (USERID, DSTID_GROUP, MEMBERID), "message", "groups"),
    Operation(
        "/contact/leavecommunity", "Leave a group", (USERID, DSTID_GROUP), "message", "groups",
        description="The owner cannot leave.",
    ),
    Operation("/contact/loadcommunity", "List my groups", (USERID,), "communities", "groups"),
    Operation(
        "/contact/members", "List a group's members", (USERID, DSTID_GROUP), "users", "groups",
        description="Members only (403 otherwise).",
    ),
    Operation(
        "/contact/renamecommunity", "Rename a group (owner)", (USERID, DSTID_GROUP, GROUP_NAME), "community",
        "groups",
    ),
    Operation(
        "/contact/removemember", "Remove and ban a member (owner, admins)", (USERID, DSTID_GROUP, MEMBERID),
        "message", "groups",
        description="Admins cannot remove the owner (`owner_fixed`) or other admins (403 `role_required`).",
    ),
    # --- messages (HTTP twins of the WebSocket requests, docs/protocol.md) ------------
    Operation(
        "/message/conversations", "My conversations with last message and unread count", (USERID,), "rows",
        "messages",
    ),
    Operation(
        "/message/sync", "Messages after the given seq per conversation", (
            USERID, Param("after", required=True, max_len=60000, description="e.g. p1_2:41,g12:0"), LIMIT,
        ), "messages", "messages",
        description="Pages: repeat with the reply's `after` while `more` is true.",
    ),
    Operation("/message/history", "Older messages of one conversation", (USERID, CONV, BEFORE, LIMIT), "messages",
              "messages"),
    Operation(
        "/message/search", "Search my conversations", (
            USERID, Param("q", required=True, max_len=100, description="Words or Chinese text."), BEFORE, LIMIT,
        ), "hits", "messages",
        description="Hits are messages with `snippet` (the text around the match) and `marks` (where "
        "the query matches in the snippet: [start, end) in UTF-16 code units). English words match as "
        "prefixes. The first page (no `before`) also lists `users` (your friends whose nickname matches, "
        "or whose mobile does if they show it to friends) and `groups` (your groups whose name matches).",
    ),
    Operation(
        "/message/read", "Mark read up to a seq", (
            USERID, CONV, Param("seq", "integer", required=True, minimum=0),
        ), "object", "messages",
    ),
    Operation(
        "/message/recall", "Recall my message (within the window)", (
            USERID, Param("id", "integer", required=True, minimum=1),
        ), "object", "messages",
    ),
    Operation("/message/receipts", "Members' delivered/read markers", (USERID, CONV), "rows", "messages"),
    Operation(
        "/message/edit", "Edit my text message (within the window)", (
            USERID, Param("id", "integer", required=True, minimum=1),
            Param("content", required=True, max_len=8000, description="The new text."),
        ), "object", "messages",
        description="Answers with the update (media 11, memo `edited`) that every device gets.",
    ),
    Operation(
        "/message/react", "Add or remove my reaction to a message", (
            USERID, Param("id", "integer", required=True, minimum=1),
            Param("emoji", required=True, max_len=16, description="1-16 characters, no spaces."),
            Param("add", enum=("true", "false"), description="false removes it (default true)."),
        ), "object", "messages",
        description="Answers with the message's reactions; every member's devices get a batched update.",
    ),
    Operation(
        "/message/pin", "Pin or unpin a message in its conversation", (
            USERID, Param("id", "integer", required=True, minimum=1),
            Param("pinned", enum=("true", "false"), description="false unpins (default true)."),
        ), "object", "messages",
        description="Groups: owner and admins only (`role_required`). Answers with the update, or null.",
    ),
    Operation(
        "/message/convsettings", "Pin or mute a conversation for myself", (
            USERID, CONV, Param("pinned", enum=("true", "false")), Param("muted", enum=("true", "false")),
        ), "object", "messages",
        description="Give pinned and/or muted. Answers with the update stored in my own stream.",
    ),
    Operation(
        "/message/forward", "Forward messages to conversations", (
            USERID, Param("ids", required=True, max_len=512, description="Message ids, e.g. 981,982 (1-20)."),
            Param("to", required=True, max_len=600, description="Conversations, e.g. p1_2,g3 (1-10)."),
        ), "rows", "messages",
        description="Kind and media kept (same URLs), marked forwarded; all checked before any is sent.",
    ),
    Operation(
        "/message/hide", "Delete messages, or a whole conversation, for myself", (
            USERID, Param("ids", max_len=2000, description="Message ids, e.g. 981,982 (or give conv)."),
            Param("conv", max_len=48, description="Hide everything of this conversation so far."),
        ), "object", "messages",
        description="Answers with the update stored in my own stream (`u<id>`), which my other devices get.",
    ),
    Operation("/push/key", "Web Push: the server's VAPID public key (applicationServerKey)", (), "object", "push"),
    Operation(
        "/push/subscribe", "Web Push: store this browser's push subscription", (
            Param("endpoint", required=True, max_len=1024, description="PushSubscription.endpoint (https)."),
            Param("p256dh", required=True, max_len=128, description="keys.p256dh (base64url P-256 point)."),
            Param("auth", required=True, max_len=64, description="keys.auth (base64url, 16 bytes)."),
        ), "object", "push",
    ),
    Operation(
        "/push/unsubscribe", "Web Push: drop this browser's subscription", (
            Param("endpoint", required=True, max_len=1024),
        ), "object", "push",
    ),
)

# --- component schemas ---------------------------------------------------------------

USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "mobile", "avatar", "sex", "nickname", "online", "token", "memo", "createat"],
    "properties": {
        "id": {"type": "integer"},
        "mobile": {"type": "string", "description": "Empty unless yourself or a friend."},
        "avatar": {"type": "string"},
        "sex": {"type": "string", "enum": ["M", "W", "U"]},
        "nickname": {"type": "string"},
        "online": {"type": "boolean", "description": "False unless yourself or a friend."},
        "token": {"type": "string", "description": "Only at login / password change, to the owner."},
        "memo": {"type": "string"},
        "createat": {"type": "string", "format": "date-time"},
        "role": {"type": "string", "description": "Group member lists: owner, admin or member."},
        "request": {"type": "object", "description": "addfriend: the friend request filed."},
        "requested": {"type": "integer", "description": "Join request lists: when (ms)."},
        "bannedby": {"type": "integer"},
        "banned": {"type": "integer", "description": "Ban lists: when (ms)."},
    },
}

COMMUNITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "ownerid", "icon", "cate", "memo", "createat"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "ownerid": {"type": "integer"},
        "icon": {"type": "string"},
        "cate": {"type": "integer"},
        "memo": {"type": "string"},
        "createat": {"type": "string", "format": "date-time"},
        "joinpolicy": {"enum": ["open", "approval", "invite"]},
        "visibility": {"enum": ["joined", "shared"]},
        "role": {"enum": ["owner", "admin", "member"], "description": "The caller's role, where known."},
        "pending": {"type": "boolean", "description": "joincommunity: a join request was filed."},
    },
}

MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "userid", "cmd", "dstid", "media", "content", "conv", "seq", "ts"],
    "properties": {
        "id": {"type": "integer"},
        "userid": {"type": "integer"},
        "cmd": {"enum": [10, 11]},
        "dstid": {"type": "integer"},
        "media": {"type": "integer", "minimum": 1, "maximum": 11},
        "content": {"type": "string"},
        "pic": {"type": "string"},
        "url": {"type": "string"},
        "memo": {"type": "string"},
        "amount": {"type": "integer"},
        "conv": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1},
        "ts": {"type": "integer"},
        "cid": {"type": "string"},
        "recalled": {"type": "boolean"},
        "reply_to": {"type": "integer", "description": "The id of the message this one replies to."},
        "reply": {"type": "object", "description": "The quoted message: id, seq, userid, media, excerpt "
                  "(recalled / deleted when it is)."},
        "mentions": {"description": "Mentioned user ids, or \"all\".",
                     "oneOf": [{"type": "array", "items": {"type": "integer"}}, {"const": "all"}]},
        "forwarded": {"type": "boolean"},
        "edited_at": {"type": "integer", "description": "When the text was last edited (ms since the epoch)."},
        "reactions": {"type": "array", "items": {"type": "object"},
                      "description": "emoji, count and (some of) the users who reacted."},
        "pinned": {"type": "boolean", "description": "Pinned in its conversation."},
    },
}

SEARCH_HIT_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Message"},
        {
            "type": "object",
            "required": ["snippet", "marks"],
            "properties": {
                "snippet": {"type": "string", "description": "The text around the match; … where cut."},
                "marks": {
                    "type": "array",
                    "description": "Where the query matches in `snippet`: [start, end), UTF-16 code units.",
                    "items": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2,
                              "maxItems": 2},
                },
            },
        },
    ],
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "msg"],
    "properties": {
        "code": {"const": -1},
        "msg": {"type": "string", "minLength": 1},
        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
        "error": {
            "type": "string",
            "description": "Stable error name (docs/protocol.md); absent on the generic refusals of the seed's routes.",
        },
        "errcode": {"type": "integer", "description": "Stable error number (docs/protocol.md)."},
    },
}

ERROR_STATUSES = {
    400: "Malformed body the parser could not read (e.g. broken multipart, a multipart without boundary, "
    "an unknown charset).",
    401: "Not logged in, or the token expired or was revoked.",
    404: "No such file.",
    403: "Forbidden: an id that is not the caller, an action reserved to the owner or members, or a write "
    "authenticated by the session cookie without proof that it comes from this origin (CSRF; send `Origin`, "
    "or use `Authorization: Bearer`).",
    413: "Request body too large.",
    415: "Unsupported content type (use form or JSON).",
    429: "Rate limited.",
    503: "Busy (every media worker occupied and the queue full, or the password-hashing slots taken); "
    "retry after `retry_after` seconds.",
}


def _envelope(reply: Reply) -> dict[str, Any]:
    """Success (code 0) and business failure (code -1) share HTTP 200, as in the seed."""
    props: dict[str, Any] = {"code": {"enum": [0, -1]}, "msg": {"type": "string"}}
    if reply == "user":
        props["data"] = {"$ref": "#/components/schemas/User"}
    elif reply == "community":
        props["data"] = {"$ref": "#/components/schemas/Community"}
    elif reply == "object":
        props["data"] = {"type": "object"}
    elif reply in ("messages", "rows"):
        row: dict[str, str] = {"$ref": "#/components/schemas/Message"} if reply == "messages" else {"type": "object"}
        props["rows"] = {"type": "array", "items": row}
        props["total"] = {"type": "integer", "minimum": 0}
        props["more"] = {"type": "boolean"}
        props["after"] = {"type": "object", "additionalProperties": {"type": "integer"}}
        props["denied"] = {"type": "array", "items": {"type": "string"}}
    elif reply == "hits":
        props["rows"] = {"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}}
        props["total"] = {"type": "integer", "minimum": 0}
        props["more"] = {"type": "boolean"}
        props["users"] = {"type": "array", "items": {"$ref": "#/components/schemas/User"}}
        props["groups"] = {"type": "array", "items": {"$ref": "#/components/schemas/Community"}}
    elif reply in ("users", "communities"):
        item = "User" if reply == "users" else "Community"
        props["rows"] = {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}
        props["total"] = {"type": "integer", "minimum": 0}
    return {"type": "object", "required": ["code", "msg"], "properties": props}


def _operation(op: Operation) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {p.name: p.schema() for p in op.params},
        "required": [p.name for p in op.params if p.required],
    }
    responses: dict[str, Any] = {
        "200": {
            "description": "`code` 0 on success; `code` -1 with a readable `msg` when refused.",
            "content": {"application/json": {"schema": _envelope(op.reply)}},
        }
    }
    statuses = {400, 413, 415} | ({401, 403} if op.auth else set()) | ({429} if op.rate_limited else set())
    for status in sorted(statuses | set(op.extra_statuses)):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    doc: dict[str, Any] = {
        "operationId": op.path.strip("/").replace("/", "_"),
        "summary": op.summary,
        "tags": [op.tag],
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {"schema": body},
                "application/json": {"schema": body},
            },
        },
        "responses": responses,
    }
    if op.description:
        doc["description"] = op.description
    if op.auth:
        doc["security"] = [{"cookie": []}, {"bearer": []}]
    return doc


# --- routes that are not form/JSON POSTs ---------------------------------------------
# Written out by hand: an upload, the media files and the WebSocket. Keep them in step
# with imhub/web/attach.py and imhub/web/chat.py (and docs/protocol.md for the frames).

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What was stored; fields that are unknown are left out (docs/media.md).",
    "required": ["url", "kind", "mime", "size"],
    "properties": {
        "url": {"type": "string"},
        "kind": {"enum": ["image", "voice", "video", "file"]},
        "mime": {"type": "string"},
        "size": {"type": "integer", "description": "Bytes stored."},
        "width": {"type": "integer", "description": "Image, or video with a picture."},
        "height": {"type": "integer"},
        "thumb": {"type": "string", "description": "Image thumbnail, or a video's poster frame (JPEG)."},
        "duration": {"type": "number", "description": "Voice: seconds, when the container says."},
        "duration_ms": {"type": "integer", "description": "Video: milliseconds."},
    },
}

OTHER_PATHS: dict[str, Any] = {
    "/attach/upload": {
        "post": {
            "operationId": "attach_upload",
            "summary": "Upload a file (image, voice, video, other)",
            "description": "The type is sniffed from the bytes; `filetype` (e.g. `.mp3`) is only a hint. "
            "Refused content: code -1 (an unsupported type or a file kind not enabled also "
            "`error: unsupported_media`, `errcode: 4150`); too large: 413 (`media_too_large`, 4130); too "
            "many uploads: 429; every decode worker busy: 503. A video gets a poster frame (`thumb`), "
            "`width`, `height` and `duration_ms`. Without any credentials (the seed's register page, "
            "before the account exists) only an "
            "image of at most IMHUB_MEDIA_ANONYMOUS_MAX_BYTES is accepted, rate-limited per address, and "
            "deleted after a day unless a registration uses it as avatar; bad credentials are 401.",
            "tags": ["media"],
            "security": [{"cookie": []}, {"bearer": []}, {}],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "filetype": {"type": "string", "maxLength": 16},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "`data` is the URL of the stored file (the seed's reply).",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["code", "msg"],
                                "properties": {
                                    "code": {"enum": [0, -1]},
                                    "msg": {"type": "string"},
                                    "data": {"type": "string"},
                                    "file": FILE_SCHEMA,
                                },
                            }
                        }
                    },
                },
                **{str(s): {"$ref": f"#/components/responses/E{s}"} for s in (400, 401, 413, 415, 429, 503)},
            },
        }
    },
    "/mnt/{name}": {
        "get": {
            "operationId": "media_file",
            "summary": "An uploaded file (generated name)",
            "description": "Our own Content-Type, `nosniff`, a sandboxing CSP. Images, voice and video "
            "are inline; files (pdf, zip, gz, 7z) are `Content-Disposition: attachment`, saved under the "
            "query's `name` made safe (RFC 6266/5987 `filename*`; the extension is always the stored "
            "one), or under the stored name.",
            "tags": ["media"],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "name",
                    "in": "query",
                    "required": False,
                    "description": "The name a file is saved as (a file message's `content`).",
                    "schema": {"type": "string", "maxLength": 1024},
                },
            ],
            "responses": {
                "200": {"description": "The file (Range supported).", "content": {"*/*": {}}},
                "206": {"description": "Part of the file (Range request).", "content": {"*/*": {}}},
                "304": {"description": "Not modified."},
                "404": {"$ref": "#/components/responses/E404"},
                "416": {"description": "Range not satisfiable."},
            },
        }
    },
    "/chat": {
        "get": {
            "operationId": "chat",
            "summary": "WebSocket upgrade (frames: docs/protocol.md)",
            "tags": ["chat"],
            "parameters": [
                {"name": "id", "in": "query", "required": True, "schema": {"type": "integer"}},
                {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
            ],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol."},
                "401": {"$ref": "#/components/responses/E401"},
                "403": {"$ref": "#/components/responses/E403"},
            },
        }
    },
}


def package_version() -> str:
    try:
        return version("imhub")
    except PackageNotFoundError:
        return "0"


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imhub HTTP API",
            "version": package_version(),
            "description": "Seed-compatible IM API: POST, form or JSON bodies, `{code,msg,data}` or "
            "`{code,msg,rows,total}` replies. Failures: `{code:-1,msg}`.",
        },
        "paths": {**{op.path: {"post": _operation(op)} for op in OPERATIONS}, **OTHER_PATHS},
        "components": {
            "schemas": {
                "User": USER_SCHEMA, "Community": COMMUNITY_SCHEMA, "Message": MESSAGE_SCHEMA,
                "SearchHit": SEARCH_HIT_SCHEMA, "Error": ERROR_SCHEMA,
            },
            "responses": {
                f"E{status}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for status, text in ERROR_STATUSES.items()
            },
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "imhub_token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def setup(app: web.Application) -> None:
    body = orjson.dumps(openapi_document())  # built and encoded once

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/openapi.json", serve)
