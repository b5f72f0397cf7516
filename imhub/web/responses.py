"""The seed's JSON envelopes: ``{code,msg,data}`` and ``{code,msg,rows,total}``.

Business outcomes are HTTP 200 with ``code`` 0 or -1 (the seed client reads only
``code``); authentication failures are 401, authorization 403, too large 413 and rate
limits 429, still with the same envelope so any client can show ``msg``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from imhub.errors import ApiError, ErrorCode, Forbidden, RateLimited, Refused, Unauthorized

__all__ = ["ApiError", "Forbidden", "RateLimited", "Refused", "Unauthorized", "fail", "ok", "refused", "rows"]


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def ok(data: Any = None, msg: str = "") -> web.Response:
    body: dict[str, Any] = {"code": 0, "msg": msg}
    if data is not None:
        body["data"] = data
    return json_response(body)


def rows(items: list[Any], total: int | None = None, msg: str = "", **extra: Any) -> web.Response:
    return json_response(
        {"code": 0, "msg": msg, "rows": items, "total": len(items) if total is None else total, **extra}
    )


def fail(msg: str, status: int = 200, **extra: Any) -> web.Response:
    return json_response({"code": -1, "msg": msg, **extra}, status=status)


def refused(exc: Refused) -> web.Response:
    """A refusal from any layer: its HTTP status and the seed's envelope, plus the stable
    error name and number (docs/protocol.md) unless it is the generic ``refused``."""
    extra = dict(exc.extra)
    if exc.code is not ErrorCode.REFUSED:
        extra.setdefault("error", exc.code.label)
        extra.setdefault("errcode", exc.code.number)
    return fail(exc.msg, status=exc.status, **extra)
