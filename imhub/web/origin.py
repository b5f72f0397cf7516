"""The one origin rule for everything a browser can be tricked into sending: the
WebSocket handshake and every state-changing HTTP request that the session cookie
authenticates (cross-site request forgery, including from a sibling subdomain or
another port of the same host, which ``SameSite=Lax`` does not stop: those are
"same-site").

An origin is allowed when it is this server's own (scheme, host and port, as the
client addressed it), the configured public URL, or in ``IMHUB_ALLOWED_ORIGINS``.
Behind a proxy the server trusts (``IMHUB_TRUST_X_REAL_IP``), its
``X-Forwarded-Proto`` says which scheme the client used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from aiohttp import web
from yarl import URL

from imhub.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """(scheme, host, port) of an Origin or of any absolute URL (a Referer); None for
    ``null`` and anything that is not an absolute http(s) URL."""
    try:
        url = URL(text.strip())
    except (ValueError, TypeError):
        return None
    scheme = (url.scheme or "").lower()
    if scheme not in ("http", "https") or not url.host:
        return None
    try:
        port = url.port  # yarl fills in 80/443 when the URL names none
    except ValueError:
        return None
    return scheme, url.host.lower(), port or 0


@functools.lru_cache(maxsize=8)
def _configured(public_url: str, allowed: tuple[str, ...]) -> frozenset[Origin]:
    origins = (parse_origin(text) for text in (public_url, *allowed) if text)
    return frozenset(o for o in origins if o is not None)


def configured_origins(settings: Settings) -> frozenset[Origin]:
    return _configured(settings.public_url, tuple(settings.allowed_origins))


def own_origin(request: web.Request, settings: Settings) -> Origin | None:
    """The origin the client addressed: the Host header with the connection's scheme
    (or the trusted proxy's ``X-Forwarded-Proto``)."""
    scheme = request.scheme
    if settings.trust_x_real_ip:
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            scheme = proto
    return parse_origin(f"{scheme}://{request.host}")


def origin_allowed(text: str, request: web.Request, settings: Settings) -> bool:
    origin = parse_origin(text)
    if origin is None:
        return False
    return origin == own_origin(request, settings) or origin in configured_origins(settings)


def browser_verdict(request: web.Request, settings: Settings) -> bool | None:
    """What the browser says about where a request comes from: True (this origin or
    an allowed one), False (elsewhere), None (no browser header at all: not a
    browser, or one too old to say). ``Origin`` first; without it (some browsers omit
    it on same-origin requests) ``Sec-Fetch-Site``, then the ``Referer``."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin_allowed(origin, request, settings)
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    referer = request.headers.get("Referer")
    if referer:
        return origin_allowed(referer, request, settings)
    return None


def cross_site_refusal(
    request: web.Request, settings: Settings, *, cookie_name: str, public_paths: Iterable[str]
) -> str | None:
    """Why a request must be refused as possibly forged, or None to let it through.

    - Safe methods and ``Authorization: Bearer`` requests pass (a page on another
      site cannot make a browser attach a bearer token).
    - A write authenticated by the session cookie needs positive proof of its origin.
    - A write to a public path (login, register) is refused only when the browser
      says it comes from elsewhere (login CSRF); API clients send no such header.
    """
    if request.method in SAFE_METHODS:
        return None
    if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
        return None
    verdict = browser_verdict(request, settings)
    if request.path in public_paths:
        return "cross-origin request refused" if verdict is False else None
    if cookie_name in request.cookies and verdict is not True:
        return "cross-origin request refused: Origin is not this site or an allowed origin"
    return None
