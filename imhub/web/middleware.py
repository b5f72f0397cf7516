"""Cross-cutting HTTP behaviour: the error envelope, body-size limits and security
headers. Handlers raise :class:`ApiError`; nothing here ever returns a traceback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from imhub.web.responses import ApiError, fail

log = structlog.get_logger("imhub.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes whose body may be larger than max_body_bytes (they enforce their own caps).
LARGE_BODY_PREFIXES = ("/attach/",)

CSP = (
    "default-src 'self'; img-src 'self' data: blob: https: http:; media-src 'self' blob: https: http:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self' ws: wss:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


def error_middleware(max_body_bytes: int) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.content_length is not None
            and request.content_length > max_body_bytes
            and not request.path.startswith(LARGE_BODY_PREFIXES)
        ):
            return fail(f"request body too large (at most {max_body_bytes} bytes)", status=413)
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.status >= 400:
                log.info("request refused", path=request.path, status=exc.status, msg=exc.msg)
            return fail(exc.msg, status=exc.status, **exc.extra)
        except web.HTTPRequestEntityTooLarge:
            return fail("request body too large", status=413)
        except HttpProcessingError as exc:
            # A malformed body the parser found mid-request (e.g. a bad multipart part
            # header): the client's fault, not ours.
            return fail(f"malformed request: {exc.message}", status=400)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.status == 101:
                raise
            return fail(exc.reason or "request refused", status=exc.status)
        except Exception:
            log.exception("unhandled error", path=request.path)
            return fail("internal server error", status=500)

    return middleware


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CSP)
    return response
