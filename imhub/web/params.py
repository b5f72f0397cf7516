"""Reading request parameters the way the seed client sends them: an
``application/x-www-form-urlencoded`` or JSON body (or the query string), all as
strings, with typed accessors that fail with a clear message."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.helpers import parse_mimetype

from imhub.web.context import services
from imhub.web.responses import ApiError


class Params:
    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def text(self, name: str, *, required: bool = True, default: str = "", max_len: int = 512) -> str:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(f"{name} is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ApiError(f"{name} must be a string")
        text = str(value).strip()
        if len(text) > max_len:
            raise ApiError(f"{name} is too long (at most {max_len} characters)")
        return text

    def number(self, name: str, *, required: bool = True, default: int = 0, min_value: int | None = None) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(f"{name} is required")
            return default
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ApiError(f"{name} must be an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ApiError(f"{name} must be an integer") from None
        if min_value is not None and number < min_value:
            raise ApiError(f"{name} must be at least {min_value}")
        if abs(number) > 2**63 - 1:
            raise ApiError(f"{name} is out of range")
        return number

    def ident(self, name: str, *, required: bool = True) -> int:
        return self.number(name, required=required, min_value=1 if required else 0)


async def read_params(request: web.Request, max_bytes: int | None = None) -> Params:
    """Merge query string and body (form or JSON) into one :class:`Params`.

    The body may be at most ``max_bytes`` (default: the ``max_body_bytes`` setting),
    also when it is chunked and has no Content-Length for the middleware to check;
    larger ones end in a 413.
    """
    values: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if max_bytes is None:
            max_bytes = services(request).settings.max_body_bytes
        # The app's client_max_size is sized for uploads; API bodies get the small cap.
        request = request.clone(client_max_size=max_bytes)
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raise ApiError("request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ApiError("JSON body must be an object")
            values.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
            values.update(await _form(request))
        else:
            raise ApiError(f"unsupported content type {ctype!r}; use form or JSON", status=415)
    return Params(values)


async def _form(request: web.Request) -> dict[str, str]:
    """The text fields of a form body. aiohttp raises plain ValueError/LookupError for
    a body that does not match its declared type (a multipart without a boundary, an
    unknown charset, undecodable bytes): the client's fault, a 400 that says so."""
    if request.content_type == "multipart/form-data" and not parse_mimetype(
        request.headers.get("Content-Type", "")
    ).parameters.get("boundary"):
        raise ApiError("multipart/form-data needs a boundary parameter", status=400)
    try:
        form = await request.post()
    except LookupError:
        raise ApiError(f"unknown charset {request.charset!r}", status=400) from None
    except ValueError as exc:
        raise ApiError(f"malformed {request.content_type or 'form'} body: {str(exc)[:100]}", status=400) from None
    return {k: v for k, v in form.items() if isinstance(v, str)}
