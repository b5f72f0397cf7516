"""Accounts: registration, login, tokens, passwords.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory
profile) in a worker thread so a login never blocks the event loop. Tokens are 256
random bits, url-safe, stored only as hashes (see :mod:`imhub.store.users`).
"""

from __future__ import annotations

import asyncio
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from imhub.config import Settings
from imhub.errors import ApiError
from imhub.store.users import DuplicateMobile, UserRow, UserStore

MOBILE_RE = re.compile(r"^\+?[0-9]{5,20}$")
SEXES = ("M", "W", "U")

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown mobile as slow as a real one,
# so response time does not reveal which numbers are registered.
_DUMMY_HASH = _hasher.hash("imhub-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(encoded: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(encoded, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def validate_mobile(mobile: str) -> str:
    if not MOBILE_RE.match(mobile):
        raise ApiError("mobile must be 5-20 digits")
    return mobile


def validate_password(passwd: str) -> str:
    if len(passwd) < 6:
        raise ApiError("passwd must be at least 6 characters")
    if len(passwd) > 128:
        raise ApiError("passwd must be at most 128 characters")
    return passwd


def validate_sex(sex: str) -> str:
    sex = sex or "U"
    if sex not in SEXES:
        raise ApiError("sex must be M, W or U")
    return sex


class AccountService:
    def __init__(self, settings: Settings, users: UserStore) -> None:
        self._settings = settings
        self._users = users

    async def register(
        self, *, mobile: str, passwd: str, nickname: str = "", avatar: str = "", sex: str = "U", memo: str = ""
    ) -> UserRow:
        validate_mobile(mobile)
        validate_password(passwd)
        try:
            return await self._users.create(
                mobile=mobile,
                passwd_hash=await hash_password(passwd),
                nickname=nickname or mobile[-4:],
                avatar=avatar,
                sex=validate_sex(sex),
                memo=memo,
            )
        except DuplicateMobile:
            raise ApiError("this mobile number is already registered") from None

    async def login(self, mobile: str, passwd: str) -> tuple[UserRow, str]:
        """Check credentials and issue a new token; raises ApiError on failure."""
        user = await self._users.by_mobile(mobile)
        valid = await verify_password(user.passwd if user else _DUMMY_HASH, passwd)
        if user is None or not valid:
            raise ApiError("wrong mobile or password")
        if user.banned:
            raise ApiError("this account is banned", status=403)
        return user, await self.issue_token(user.id)

    async def issue_token(self, user_id: int) -> str:
        token = new_token()
        await self._users.add_token(user_id, token, self._settings.token_ttl_seconds)
        return token

    async def authenticate(self, token: str) -> int | None:
        """User id for a valid token, else None."""
        if not token or len(token) > 256:
            return None
        return await self._users.user_for_token(token)
