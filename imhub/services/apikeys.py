"""API keys of the server API (``/server/v1/``): created and revoked by the operator
(``imhub apikey``), shown once at creation, stored as sha256 (a key is 256 random bits,
so no slow hash is needed), scoped, and rate-limited per key."""

from __future__ import annotations

import hashlib
import math
import re
import secrets

from imhub.config import Settings
from imhub.errors import ErrorCode, Forbidden, RateLimited, Refused, Unauthorized
from imhub.ratelimit import SlidingWindowLimiter
from imhub.store.integration import ApiKeyRow, IntegrationStore

# users: provision, update, deactivate, tokens; messages: send; groups: create, update,
# members, roles; read: users, conversations, history, groups, online status.
SCOPES = ("users", "messages", "groups", "read")
KEY_PREFIX = "imk_"
NAME_RE = re.compile(r"^[A-Za-z0-9_. -]{1,64}$")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise Refused(ErrorCode.BAD_PARAM, f"scopes must be a comma-separated subset of {','.join(SCOPES)}",
                      status=400)
    return scopes


class ApiKeyService:
    def __init__(self, settings: Settings, store: IntegrationStore) -> None:
        self._store = store
        self.limiter = SlidingWindowLimiter(settings.server_api_requests_per_minute, 60)

    async def create(self, name: str, scopes: str) -> tuple[ApiKeyRow, str]:
        """A new key: its row and the key itself, which is never shown again."""
        if not NAME_RE.match(name):
            raise Refused(ErrorCode.BAD_PARAM, "name must be 1-64 letters, digits, spaces, _ . or -", status=400)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = await self._store.add_key(name, key_hash(key), key[:12], parse_scopes(scopes))
        return row, key

    async def keys(self) -> list[ApiKeyRow]:
        return await self._store.keys()

    async def revoke(self, key_id: int) -> None:
        if not await self._store.revoke_key(key_id):
            raise Refused(ErrorCode.NOT_FOUND, f"no live API key {key_id}", status=404)

    async def authenticate(self, key: str) -> ApiKeyRow:
        """The live key ``key`` is; 401 otherwise."""
        if not key.startswith(KEY_PREFIX) or len(key) > 128:
            raise Unauthorized("an API key is required (Authorization: Bearer imk_...)")
        row = await self._store.key_by_hash(key_hash(key))
        if row is None or row.revoked:
            raise Unauthorized("unknown or revoked API key")
        return row

    def admit(self, row: ApiKeyRow, scope: str) -> None:
        """Count one call of ``row`` needing ``scope``: 429 over the key's rate limit,
        403 without the scope."""
        wait = self.limiter.retry_after(row.id)
        if wait > 0:
            raise RateLimited("this API key is over its rate limit", retry_after=max(1, math.ceil(wait)))
        self.limiter.hit(row.id)
        if scope not in row.scopes:
            raise Forbidden(f"this API key lacks the {scope!r} scope")
