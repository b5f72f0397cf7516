"""The web client's pages and static files.

The Vue single-page app (``frontend/``) is built by ``make -C frontend build`` into
``imhub/web/static/app/``. Its ``index.html`` is answered at the seed's page paths
(``/user/login.shtml`` …) and at the app's own history-mode routes; its hashed build
files are served under ``/asset/`` with long cache lifetimes. ``/`` redirects to the
login page, as in the seed. Without a build, the pages answer 503 with what to run.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static" / "app"
FAVICON = Path(__file__).parent / "static" / "favicon.ico"  # in the source tree, not built
ASSET_PREFIX = "/asset/"

# The seed's pages, then the client's history-mode routes (frontend/src/router.js).
PAGE_PATHS = (
    "/user/login.shtml",
    "/user/register.shtml",
    "/chat/index.shtml",
    "/login",
    "/register",
    "/chats",
    "/contacts",
    "/groups",
    "/me",
)
# /join/<token>: the invite links the server hands out (imhub/web/consent.py invite_link).
PAGE_PREFIXES = ("/chat/{tail:.+}", "/groups/{tail:.+}", "/join/{tail:.+}")

# Vite names built files ``name-<hash>.ext``: their content never changes.
HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$")
LONG_CACHE = "public, max-age=31536000, immutable"
NOT_BUILT = (
    "The imhub web client has not been built.\n\n"
    "Run `make run` (it builds frontend/ with Node.js >= 20 and npm, then serves), or\n"
    "`make -C frontend build` and reload this page.\n"
)
STATIC_DIR_KEY = web.AppKey("static_app_dir", Path)


def _static_dir(request: web.Request) -> Path:
    return request.app.get(STATIC_DIR_KEY, STATIC_DIR)


async def index(request: web.Request) -> web.StreamResponse:
    path = _static_dir(request) / "index.html"
    if not path.is_file():
        return web.Response(status=503, text=NOT_BUILT, headers={"Cache-Control": "no-store", "Retry-After": "30"})
    # Always revalidate the page itself: it names the current hashed bundles.
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8"})


async def favicon(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(FAVICON, headers={"Cache-Control": "public, max-age=86400",
                                              "Content-Type": "image/x-icon"})


async def root(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/user/login.shtml")


async def asset(request: web.Request) -> web.StreamResponse:
    base = _static_dir(request).resolve()
    rel = request.match_info["path"]
    if not rel or "\\" in rel or "\0" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
        raise web.HTTPNotFound(reason="no such asset")
    path = (base / rel).resolve()
    if not path.is_relative_to(base) or not path.is_file() or path.name == "index.html":
        raise web.HTTPNotFound(reason="no such asset")
    cache = LONG_CACHE if HASHED.search(path.name) else "no-cache"
    return web.FileResponse(path, headers={"Cache-Control": cache})


def setup(app: web.Application, static_dir: Path | None = None) -> None:
    if static_dir is not None:
        app[STATIC_DIR_KEY] = static_dir
    app.router.add_get("/", root)
    app.router.add_get("/favicon.ico", favicon)
    for path in (*PAGE_PATHS, *PAGE_PREFIXES):
        app.router.add_get(path, index)
    app.router.add_get(ASSET_PREFIX + "{path:.+}", asset)
