"""Cross-cutting HTTP behaviour: the access log (query-string tokens redacted), the
error envelope, body-size limits and security headers. Handlers raise
:class:`~imhub.errors.Refused`; nothing here ever returns a traceback."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from imhub.logs import loggable_path
from imhub.web.auth import COOKIE_NAME
from imhub.web.context import services
from imhub.web.origin import cross_site_refusal
from imhub.web.responses import Forbidden, Refused, fail, refused

log = structlog.get_logger("imhub.http")
access_log = structlog.get_logger("imhub.access")
# Polled every second by probes and Prometheus: logged at debug level only.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Writes that no session authenticates: refused only when a browser says they come
# from another site (login CSRF), see imhub.web.origin.
PUBLIC_WRITE_PATHS = frozenset({"/user/login", "/user/register"})

# Routes whose body may be larger than max_body_bytes (they enforce their own caps).
LARGE_BODY_PREFIXES = ("/attach/",)

def content_security_policy(media_base_url: str = "/mnt/") -> str:
    """The pages' CSP. Images and sounds only from this origin (and the media base when
    it is another origin, a bucket or CDN), ``data:``/``blob:`` for the client's own
    previews: content that names a third party's image cannot make the browser fetch
    it, even if it got past imhub/domain/urls.py (old messages, other clients)."""
    media = ""
    parts = urlsplit(media_base_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        media = f" {parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'self'; img-src 'self' data: blob:{media}; media-src 'self' blob:{media}; "
        "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self' ws: wss:; "
        "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
    )


CSP = content_security_policy()


def edge_middleware(max_body_bytes: int, csp: str = CSP) -> Middleware:
    """The one middleware of the app: access log (outermost, so it sees the final
    status), body-size limit, the cross-site (CSRF) check, the error envelope,
    security headers. One coroutine, not
    one per concern: a WebSocket keeps its request's middleware frames alive for as
    long as it is open, ~0.6 KB each per connection."""

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response: web.StreamResponse
            too_large = _too_large(request, max_body_bytes)
            forged = cross_site_refusal(
                request, services(request).settings, cookie_name=COOKIE_NAME, public_paths=PUBLIC_WRITE_PATHS
            )
            if too_large is not None:
                response = too_large
            elif forged is not None:
                log.info("request refused", path=request.path, status=403, msg=forged,
                         origin=request.headers.get("Origin"))
                response = refused(Forbidden(forged))
            else:
                try:
                    response = await handler(request)
                except Refused as exc:
                    if exc.status >= 400:
                        log.info("request refused", path=request.path, status=exc.status, msg=exc.msg)
                    response = refused(exc)
                except web.HTTPRequestEntityTooLarge:
                    response = fail("request body too large", status=413)
                except HttpProcessingError as exc:
                    # A malformed body the parser found mid-request (e.g. a bad multipart
                    # part header): the client's fault, not ours.
                    response = fail(f"malformed request: {exc.message}", status=400)
                except web.HTTPException as exc:
                    if exc.status < 400 or exc.status == 101:
                        status = exc.status  # a redirect, or the 101 of an upgrade
                        raise
                    response = fail(exc.reason or "request refused", status=exc.status)
                except Exception:
                    log.exception("unhandled error", path=request.path)
                    response = fail("internal server error", status=500)
            status = response.status
            _secure(response.headers, csp)
            return response
        finally:
            # The line's fields (the redacted path is a urlencode of the parsed query)
            # are built only when it is written: a server logging at warning, like the
            # bench's, skipped the line but paid ~1.5 % of a worker's handshakes for it.
            quiet = request.path in QUIET_PATHS
            if access_log.is_enabled_for(logging.DEBUG if quiet else logging.INFO):
                emit = access_log.debug if quiet else access_log.info
                emit(
                    "request",
                    method=request.method,
                    path=loggable_path(request.path, request.query.items()),
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                    remote=request.remote,
                )

    return edge


def _too_large(request: web.Request, max_body_bytes: int) -> web.Response | None:
    if (
        request.content_length is not None
        and request.content_length > max_body_bytes
        and not request.path.startswith(LARGE_BODY_PREFIXES)
    ):
        return fail(f"request body too large (at most {max_body_bytes} bytes)", status=413)
    return None


def _secure(headers: MutableMapping[str, str], csp: str = CSP) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", csp)
