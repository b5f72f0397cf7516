"""The server API, ``/server/v1/…`` (docs/server-api.md): for the product that
embeds imhub, from its own servers, authenticated by an API key
(``Authorization: Bearer imk_…``, made with ``imhub apikey create``).

JSON in, ``{code:0,msg,data}`` out; a refusal is ``{code:-1,msg,error,errcode}`` with a
real HTTP status (400, 401, 403, 404, 409, 429). Every call is written to the audit log
(``imhub.audit``: key id and name, method, route, status; never the key, never a
token). The table :data:`ROUTES` makes both the router entries and the OpenAPI document
served at ``/server/v1/openapi.json``; the rules live in
:mod:`imhub.services.server_api`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import web

from imhub.errors import ErrorCode, Refused
from imhub.protocol.frames import message_dict
from imhub.store.integration import ApiKeyRow
from imhub.web.context import services
from imhub.web.openapi import package_version
from imhub.web.responses import ok

audit = structlog.get_logger("imhub.audit")

PREFIX = "/server/v1"
MAX_ID = 2**63 - 1

_NOT_FOUND = frozenset({
    ErrorCode.UNKNOWN_USER, ErrorCode.UNKNOWN_GROUP, ErrorCode.UNKNOWN_TARGET, ErrorCode.UNKNOWN_MESSAGE,
    ErrorCode.NOT_FOUND,
})
_FORBIDDEN = frozenset({
    ErrorCode.NOT_FRIEND, ErrorCode.NOT_MEMBER, ErrorCode.NOT_IN_CONVERSATION, ErrorCode.ROLE_REQUIRED,
    ErrorCode.FORBIDDEN, ErrorCode.REJECTED,
})
_CONFLICT = frozenset({
    ErrorCode.ALREADY_MEMBER, ErrorCode.OWNER_FIXED, ErrorCode.DEACTIVATED, ErrorCode.ALREADY_FRIENDS,
    ErrorCode.TOO_MANY_GROUPS, ErrorCode.GROUP_FULL, ErrorCode.BANNED,
})


def http_status(exc: Refused) -> int:
    """The seed's routes answer business refusals with HTTP 200; this API says what
    happened in the status too."""
    if exc.status != 200:
        return exc.status
    if exc.code in _NOT_FOUND:
        return 404
    if exc.code in _FORBIDDEN:
        return 403
    if exc.code in _CONFLICT:
        return 409
    return 400


# --- reading the request ---------------------------------------------------------------


def _bad(msg: str) -> Refused:
    return Refused(ErrorCode.BAD_PARAM, msg, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    if request.content_type != "application/json":
        raise Refused(ErrorCode.BAD_PARAM, "send a JSON body (Content-Type: application/json)", status=415)
    raw = await request.clone(client_max_size=services(request).settings.max_body_bytes).read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, max_len: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise _bad(f"{name} must be a string of at most {max_len} characters")
    return value


def _int(value: Any, name: str, *, lo: int = 1, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= MAX_ID:
        raise _bad(f"{name} must be an integer from {lo} to {MAX_ID}")
    return value


def _bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{name} must be true or false")
    return value


def _ext_list(body: dict[str, Any], name: str, *, max_items: int) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or len(value) > max_items or not all(isinstance(v, str) for v in value):
        raise _bad(f"{name} must be a list of at most {max_items} ext_ids")
    return value


def _ext(request: web.Request) -> str:
    return request.match_info["ext_id"]


def _gid(request: web.Request) -> int:
    return _int(request.match_info["id"], "id")


# --- handlers (each returns the reply's data) -------------------------------------------

Handler = Callable[[web.Request], Awaitable[Any]]


async def provision(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.provision(
        _text(body, "ext_id", max_len=128, required=True) or "",
        _text(body, "nickname", max_len=64) or "", _text(body, "avatar", max_len=512) or "",
    )


async def get_user(request: web.Request) -> Any:
    return await services(request).server_api.user(_ext(request))


async def update_user(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.update(
        _ext(request), nickname=_text(body, "nickname", max_len=64), avatar=_text(body, "avatar", max_len=512),
        active=_bool(body, "active"),
    )


async def deactivate_user(request: web.Request) -> Any:
    return await services(request).server_api.deactivate(_ext(request))


async def issue_token(request: web.Request) -> Any:
    body = await _body(request)
    ttl = _int(body.get("ttl_seconds"), "ttl_seconds", default=0, lo=0)
    return await services(request).server_api.issue_token(_ext(request), ttl)


async def revoke_tokens(request: web.Request) -> Any:
    return await services(request).server_api.revoke_tokens(_ext(request))


async def conversations(request: web.Request) -> Any:
    return await services(request).server_api.conversations(_ext(request))


async def history(request: web.Request) -> Any:
    q = request.query
    conv = q.get("conv", "")
    if not 1 < len(conv) <= 48:
        raise _bad("conv must be a conversation id like p1_2 or g3")
    before = _int(q.get("before"), "before", default=MAX_ID)
    limit = _int(q.get("limit"), "limit", default=50)
    messages, more = await services(request).server_api.history(_ext(request), conv, before, limit)
    return {"messages": [message_dict(m) for m in messages], "more": more}


async def online(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.online(_ext_list(body, "ext_ids", max_items=1000))


_MESSAGE_FIELDS = ("media", "content", "pic", "url", "memo", "amount")


async def send_message(request: web.Request) -> Any:
    body = await _body(request)
    sender = _text(body, "from", max_len=128)
    to_user = _text(body, "to_user", max_len=128)
    to_group = None if body.get("to_group") is None else _int(body.get("to_group"), "to_group")
    cid = _text(body, "cid", max_len=64, required=True) or ""
    if not cid:
        raise _bad("cid is required")
    fields = {k: body[k] for k in _MESSAGE_FIELDS if k in body}
    return await services(request).server_api.send(
        sender=sender, to_user=to_user, to_group=to_group, body=fields, cid=cid
    )


async def create_group(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.create_group(
        owner=_text(body, "owner", max_len=128, required=True) or "",
        name=_text(body, "name", max_len=64, required=True) or "",
        join_policy=_text(body, "join_policy", max_len=12) or "",
        visibility=_text(body, "visibility", max_len=12) or "",
        members=_ext_list(body, "members", max_items=500),
    )


async def get_group(request: web.Request) -> Any:
    return await services(request).server_api.group(_gid(request))


async def update_group(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.update_group(
        _gid(request), name=_text(body, "name", max_len=64), join_policy=_text(body, "join_policy", max_len=12),
        visibility=_text(body, "visibility", max_len=12),
    )


async def put_member(request: web.Request) -> Any:
    body = await _body(request)
    return await services(request).server_api.put_member(_gid(request), _ext(request),
                                                          _text(body, "role", max_len=8))


async def remove_member(request: web.Request) -> Any:
    return await services(request).server_api.remove_member(_gid(request), _ext(request))


# --- the route table ------------------------------------------------------------------------


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


def _s(max_len: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len, **extra}


EXT_ID = _s(128, pattern=r"^[A-Za-z0-9_.:@-]{1,128}$", description="The product's own id for the user.")
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
POLICY = _s(12, enum=["open", "approval", "invite"])
VISIBILITY = _s(12, enum=["joined", "shared"])


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    scope: str
    handler: Handler
    summary: str
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


ROUTES: tuple[Route, ...] = (
    Route("POST", "/users", "users", provision, "Provision a user by ext_id (or get the existing one)",
          _obj({"ext_id": EXT_ID, "nickname": _s(64), "avatar": _s(512)}, ("ext_id",)),
          description="Idempotent: an existing ext_id returns its user with `created: false`. The user has no "
          "password; they log in with tokens from `POST /users/{ext_id}/tokens`."),
    Route("GET", "/users/{ext_id}", "read", get_user, "A provisioned user"),
    Route("PATCH", "/users/{ext_id}", "users", update_user, "Update nickname, avatar, active",
          _obj({"nickname": _s(64), "avatar": _s(512), "active": {"type": "boolean"}}),
          description="`active: false` deactivates (as `/deactivate`); `active: true` lets the user have tokens "
          "again."),
    Route("POST", "/users/{ext_id}/deactivate", "users", deactivate_user, "Deactivate a user",
          description="No new tokens; every token revoked and every socket closed, on every worker and node."),
    Route("POST", "/users/{ext_id}/tokens", "users", issue_token, "Issue a login token",
          _obj({"ttl_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}),
          description="An opaque token for the user's client (Bearer, or the WebSocket's `token`); "
          "`ttl_seconds` 0 or absent: IMHUB_TOKEN_TTL_SECONDS. 409 for a deactivated user."),
    Route("DELETE", "/users/{ext_id}/tokens", "users", revoke_tokens, "Revoke every token of a user",
          description="Closes the user's sockets everywhere."),
    Route("GET", "/users/{ext_id}/conversations", "read", conversations, "A user's conversations"),
    Route("GET", "/users/{ext_id}/history", "read", history, "A conversation's history, as the user sees it",
          query={"conv": _s(48), "before": ID, "limit": ID}),
    Route("POST", "/online", "read", online, "Who of these users is online",
          _obj({"ext_ids": {"type": "array", "maxItems": 1000, "items": EXT_ID}}, ("ext_ids",))),
    Route("POST", "/messages", "messages", send_message, "Send a message as a user or as the system account",
          _obj({
              "from": EXT_ID, "to_user": EXT_ID, "to_group": ID, "cid": _s(64, minLength=1),
              "media": {"type": "integer", "minimum": 1, "maximum": 9}, "content": _s(8000), "pic": _s(1024),
              "url": _s(1024), "memo": _s(1024), "amount": {"type": "integer"},
          }, ("cid",)),
          description="Exactly one of `to_user`/`to_group`. Without `from`, sent by the system account "
          "(IMHUB_SERVER_API_SYSTEM_NAME), which becomes the recipient's contact. Stored, sequenced, delivered "
          "and synced like a socket send; resending a `cid` returns the stored message (`duplicate: true`)."),
    Route("POST", "/groups", "groups", create_group, "Create a group",
          _obj({"owner": EXT_ID, "name": _s(64, minLength=1), "join_policy": POLICY, "visibility": VISIBILITY,
                "members": {"type": "array", "maxItems": 500, "items": EXT_ID}}, ("owner", "name"))),
    Route("GET", "/groups/{id}", "read", get_group, "A group and its members with their roles"),
    Route("PATCH", "/groups/{id}", "groups", update_group, "Rename a group or change its policies",
          _obj({"name": _s(64, minLength=1), "join_policy": POLICY, "visibility": VISIBILITY})),
    Route("PUT", "/groups/{id}/members/{ext_id}", "groups", put_member, "Add a member and/or set their role",
          _obj({"role": _s(8, enum=["admin", "member"])}),
          description="Adds the user whatever the join policy (lifting a ban); `role` sets admin or member."),
    Route("DELETE", "/groups/{id}/members/{ext_id}", "groups", remove_member, "Remove a member"),
)


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        key: ApiKeyRow | None = None
        status = 500
        try:
            svc = services(request)
            header = request.headers.get("Authorization", "")
            given = header[7:].strip() if header[:7].lower() == "bearer " else ""
            key = await svc.apikeys.authenticate(given)
            svc.apikeys.admit(key, route.scope)
            data = await route.handler(request)
            status = 200
            return ok(data)
        except Refused as exc:
            exc.status = http_status(exc)
            status = exc.status
            raise
        finally:
            audit.info(
                "server_api", key_id=key.id if key else None, key_name=key.name if key else None,
                method=request.method, route=route.path, path=request.path, status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    return handle


# --- the OpenAPI document ----------------------------------------------------------------

ERRORS = {
    400: "A parameter is missing, malformed or out of range.",
    401: "No API key, or an unknown or revoked one.",
    403: "The key lacks the route's scope, or the user may not do this (not friends, not a member).",
    404: "No such user (ext_id) or group.",
    409: "The state forbids it (deactivated user, owner's role, already a member...).",
    413: "Request body too large.",
    415: "The body is not JSON.",
    429: "The key is over its rate limit (IMHUB_SERVER_API_REQUESTS_PER_MINUTE); retry after `retry_after`.",
}


def _operation(route: Route) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": EXT_ID if name == "ext_id" else ID}
        for name in ("id", "ext_id") if "{" + name + "}" in route.path
    ]
    params += [
        {"name": name, "in": "query", "required": name == "conv", "schema": schema}
        for name, schema in route.query.items()
    ]
    name = route.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    doc: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{name}",
        "summary": route.summary,
        "description": (route.description + f" Scope: `{route.scope}`.").strip(),
        "tags": [route.scope],
        "security": [{"apiKey": []}],
        "responses": {
            "200": {
                "description": "`code` 0 and the result in `data`.",
                "content": {"application/json": {"schema": _obj(
                    {"code": {"const": 0}, "msg": {"type": "string"}, "data": {}}, ("code", "msg", "data")
                )}},
            },
            **{str(s): {"$ref": f"#/components/responses/E{s}"} for s in ERRORS},
        },
    }
    if params:
        doc["parameters"] = params
    if route.body is not None:
        doc["requestBody"] = {"required": False, "content": {"application/json": {"schema": route.body}}}
    return doc


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imhub server API",
            "version": package_version(),
            "description": "For the product embedding imhub, from its servers: provision users by ext_id, issue "
            "login tokens, send messages, manage groups, read conversations. API keys: `imhub apikey create`.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": _obj({
                    "code": {"const": -1}, "msg": {"type": "string"}, "error": {"type": "string"},
                    "errcode": {"type": "integer"}, "retry_after": {"type": "integer"},
                }, ("code", "msg")),
            },
            "responses": {
                f"E{s}": {"description": text,
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for s, text in ERRORS.items()
            },
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "imk_... API key"}},
        },
    }


def setup(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, _wrap(route))
    body = orjson.dumps(openapi_document())

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get(PREFIX + "/openapi.json", serve)
