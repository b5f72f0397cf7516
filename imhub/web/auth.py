"""Who is calling: a session cookie (set at login, for the seed client which sends no
token on HTTP calls) or ``Authorization: Bearer <token>``; the WebSocket also takes
``?token=``. Ids sent by the client (``userid``, ``ownerid``) are only ever checked
against the authenticated user, never trusted."""

from __future__ import annotations

from aiohttp import web

from imhub.errors import Forbidden, Unauthorized
from imhub.services.login_guard import DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE
from imhub.web.context import services
from imhub.web.params import Params, read_params

COOKIE_NAME = "imhub_token"
USER_ID = web.RequestKey("user_id", int)


def request_token(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if allow_query and request.query.get("token"):
        return request.query["token"]
    return request.cookies.get(COOKIE_NAME, "")


async def current_user(request: web.Request, *, allow_query: bool = False) -> int:
    """The authenticated user id; raises 401 otherwise. Cached on the request."""
    if USER_ID in request:
        return request[USER_ID]
    user_id = await services(request).accounts.authenticate(request_token(request, allow_query=allow_query))
    if user_id is None:
        raise Unauthorized()
    request[USER_ID] = user_id
    return user_id


def require_self(claimed: int | None, user_id: int, name: str = "userid") -> None:
    """Refuse a client-sent id that is not the caller (compatibility never means trust)."""
    if claimed is not None and claimed != 0 and claimed != user_id:
        raise Forbidden(f"{name} does not match the logged-in user")


def client_address(request: web.Request) -> str:
    """The caller's address for limits and logs: the socket peer, or ``X-Real-IP``
    when a trusted proxy in front sets it (IMHUB_TRUST_X_REAL_IP)."""
    if services(request).settings.trust_x_real_ip:
        real = request.headers.get("X-Real-IP", "").strip()
        if real:
            return real
    return request.remote or ""


async def caller(request: web.Request, id_name: str = "userid") -> tuple[int, Params]:
    """The authenticated user and the request's params, with the client-sent
    ``id_name`` (``userid``/``ownerid``) checked to be that user if present."""
    user_id = await current_user(request)
    p = await read_params(request)
    require_self(p.ident(id_name, required=False), user_id, id_name)
    return user_id, p


def set_session_cookie(response: web.StreamResponse, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        COOKIE_NAME, token, max_age=max_age, httponly=True, samesite="Lax", secure=secure, path="/"
    )


def set_device_cookie(response: web.StreamResponse, value: str, secure: bool) -> None:
    """The known-device cookie (imhub.services.login_guard): sent only to the login."""
    response.set_cookie(
        DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_MAX_AGE, httponly=True, samesite="Strict", secure=secure,
        path="/user/login",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/")
