"""Accounts: registration, login, tokens, passwords, profiles.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory
profile) in a worker thread so a login never blocks the event loop. Tokens are 256
random bits, url-safe, stored only as hashes (see :mod:`imhub.store.users`).

Logins are limited by :class:`~imhub.services.login_guard.LoginGuard` (attempts
reserved before the verify; per account, known device and address). Registrations are
limited per address, and their hashing (with password changes') goes through a small
per-process pool of slots, so a registration flood cannot starve logins of CPU.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Awaitable, Callable

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from imhub.config import Settings
from imhub.domain.urls import media_ref_problem
from imhub.errors import ApiError, RateLimited
from imhub.ratelimit import SlidingWindowLimiter
from imhub.services.login_guard import LoginGuard
from imhub.store.handshake import HandshakeReader, Opening
from imhub.store.users import DuplicateMobile, UserRow, UserStore, token_hash

log = structlog.get_logger("imhub.accounts")

MOBILE_RE = re.compile(r"^\+?[0-9]{5,20}$")
SEXES = ("M", "W", "U")
NICKNAME_MAX = 64  # users.nickname is String(64)
TEXT_MAX = 512  # users.avatar / users.memo are String(512)

# Finding users by phone number is how friends are added, and also how an account
# could harvest which numbers are registered: allow a person's pace, not a script's.
MOBILE_LOOKUPS_PER_MINUTE = 30

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


def validate_password(passwd: str, name: str = "passwd") -> str:
    if len(passwd) < 6:
        raise ApiError(f"{name} must be at least 6 characters")
    if len(passwd) > 128:
        raise ApiError(f"{name} must be at most 128 characters")
    return passwd


def validate_sex(sex: str) -> str:
    sex = sex or "U"
    if sex not in SEXES:
        raise ApiError("sex must be M, W or U")
    return sex


def check_printable(text: str, name: str, *, multiline: bool = False) -> str:
    """Refuse control characters (PostgreSQL cannot even store NUL); a memo may keep
    its line breaks and tabs."""
    allowed = "\n\r\t" if multiline else ""
    if any((ord(c) < 32 and c not in allowed) or c == "\x7f" for c in text):
        raise ApiError(f"{name} must not contain control characters")
    return text


def validate_nickname(nickname: str) -> str:
    nickname = nickname.strip()
    if len(nickname) > NICKNAME_MAX:
        raise ApiError(f"nickname is too long (at most {NICKNAME_MAX} characters)")
    return check_printable(nickname, "nickname")


def validate_avatar(avatar: str, media_base: str) -> str:
    if len(avatar) > TEXT_MAX:
        raise ApiError(f"avatar is too long (at most {TEXT_MAX} characters)")
    # Shown as <img src> to everyone who sees the user: only this server's media
    # (imhub/domain/urls.py), never a third party's tracker, never javascript:/data:.
    problem = media_ref_problem(avatar, "avatar", media_base)
    if problem:
        raise ApiError(problem)
    return check_printable(avatar, "avatar")


def validate_memo(memo: str) -> str:
    if len(memo) > TEXT_MAX:
        raise ApiError(f"memo is too long (at most {TEXT_MAX} characters)")
    return check_printable(memo, "memo", multiline=True)


class AccountService:
    def __init__(self, settings: Settings, users: UserStore) -> None:
        self._settings = settings
        self._users = users
        self._handshakes = HandshakeReader(users.db)
        self.guard = LoginGuard(settings)
        self.password_change_limiter = SlidingWindowLimiter(settings.login_max_attempts, settings.login_window_seconds)
        self.register_limiter = SlidingWindowLimiter(settings.register_max_per_ip, settings.register_window_seconds)
        self._hash_slots = asyncio.Semaphore(settings.password_hash_concurrency)
        self.lookup_limiter = SlidingWindowLimiter(MOBILE_LOOKUPS_PER_MINUTE, 60)
        # Called after tokens are revoked: (user_id, token hash or "*" for all). The
        # messaging layer closes the WebSockets that were opened with them.
        self.revocation_listeners: list[Callable[[int, str], Awaitable[None]]] = []

    async def _revoked(self, user_id: int, which: str) -> None:
        for listener in list(self.revocation_listeners):
            try:
                await listener(user_id, which)
            except Exception:
                log.exception("revocation listener failed", user_id=user_id)

    # --- registration and login ----------------------------------------------------

    async def register(
        self,
        *,
        mobile: str,
        passwd: str,
        nickname: str = "",
        avatar: str = "",
        sex: str = "U",
        memo: str = "",
        ip: str = "",
    ) -> UserRow:
        validate_mobile(mobile)
        validate_password(passwd)
        profile = {
            "nickname": validate_nickname(nickname) or mobile[-4:],
            "avatar": validate_avatar(avatar, self._settings.media_base_url),
            "sex": validate_sex(sex),
            "memo": validate_memo(memo),
        }
        # Counted once valid, i.e. once it would cost a hash.
        wait = self.register_limiter.retry_after(ip)
        if wait > 0:
            raise RateLimited("too many registrations from your address, try again later",
                              retry_after=math.ceil(wait))
        self.register_limiter.hit(ip)
        try:
            return await self._users.create(mobile=mobile, passwd_hash=await self._hash_slot(passwd), **profile)
        except DuplicateMobile:
            raise ApiError("this mobile number is already registered") from None

    async def _hash_slot(self, passwd: str) -> str:
        """Hash in one of the few slots registrations and password changes share; a
        request that finds none free within ``password_hash_wait_seconds`` is refused
        (503 with ``retry_after``) instead of queueing CPU work without bound."""
        try:
            async with asyncio.timeout(self._settings.password_hash_wait_seconds):
                await self._hash_slots.acquire()
        except TimeoutError:
            raise ApiError("server busy, try again shortly", status=503, retry_after=5) from None
        try:
            return await hash_password(passwd)
        finally:
            self._hash_slots.release()

    async def login(
        self, mobile: str, passwd: str, ip: str = "", device_cookie: str = ""
    ) -> tuple[UserRow, str, str]:
        """Check credentials and issue a new token; returns the user, the token and
        the known-device cookie for this browser.

        Raises ApiError on bad credentials and :class:`RateLimited` (429) when the
        login limits say so (:class:`~imhub.services.login_guard.LoginGuard`).
        """
        with self.guard.attempt(mobile, ip, device_cookie) as attempt:
            # A malformed mobile cannot be registered; do not send it to the database.
            user = await self._users.by_mobile(mobile) if MOBILE_RE.match(mobile) else None
            valid = await verify_password(user.passwd if user else _DUMMY_HASH, passwd)
            if user is None or not valid:
                raise ApiError("wrong mobile or password")
            if user.banned:
                raise ApiError("this account is banned", status=403)
            device = self.guard.succeeded(attempt)
        return user, await self.issue_token(user.id), device

    async def issue_token(self, user_id: int, ttl_seconds: int | None = None) -> str:
        """A new login token (default lifetime ``IMHUB_TOKEN_TTL_SECONDS``)."""
        token = new_token()
        await self._users.add_token(user_id, token, ttl_seconds or self._settings.token_ttl_seconds)
        return token

    async def revoke_all(self, user_id: int) -> None:
        """Revoke every token of the user and close their sockets everywhere."""
        await self._users.revoke_all_tokens(user_id)
        await self._revoked(user_id, "*")

    async def authenticate(self, token: str) -> int | None:
        """User id for a valid token, else None."""
        if not token or len(token) > 256:
            return None
        return await self._users.user_for_token(token)

    async def open_session(self, token: str) -> Opening | None:
        """For a WebSocket handshake: the token's user with their groups and friends,
        in one database trip; None for a token that does not authenticate."""
        if not token or len(token) > 256:
            return None
        return await self._handshakes.open(token)

    async def logout(self, token: str) -> None:
        """Revoke this one token (other devices stay logged in)."""
        if not token:
            return
        user_id = await self._users.user_for_token(token)
        await self._users.revoke_token(token)
        if user_id is not None:
            await self._revoked(user_id, token_hash(token))

    async def change_password(self, user_id: int, old: str, new: str) -> str:
        """Replace the password, revoke every token of the user (all devices are
        logged out) and return a fresh token for the caller's session."""
        validate_password(new, "newpasswd")
        user = await self.get(user_id)
        # Reserved before the verify, like a login (imhub.services.login_guard).
        wait = self.password_change_limiter.retry_after(user_id)
        if wait > 0:
            raise RateLimited("too many wrong passwords, try again later", retry_after=math.ceil(wait))
        self.password_change_limiter.hit(user_id)
        if not await verify_password(user.passwd, old):
            raise ApiError("old password is wrong")
        self.password_change_limiter.reset(user_id)
        await self._users.set_password(user_id, await self._hash_slot(new))
        await self._users.revoke_all_tokens(user_id)
        await self._revoked(user_id, "*")
        return await self.issue_token(user_id)

    # --- profiles ------------------------------------------------------------------

    async def get(self, user_id: int) -> UserRow:
        user = await self._users.get(user_id)
        if user is None:
            raise ApiError("no such user")
        return user

    async def find_by_mobile(self, mobile: str, *, by: int) -> UserRow:
        """The user with this mobile, for user ``by`` (rate-limited per caller)."""
        wait = self.lookup_limiter.retry_after(by)
        if wait > 0:
            raise RateLimited("too many lookups by mobile, try again later", retry_after=math.ceil(wait))
        self.lookup_limiter.hit(by)
        user = await self._users.by_mobile(mobile) if MOBILE_RE.match(mobile) else None
        if user is None:
            raise ApiError("no user with this mobile number")
        return user

    async def update_profile(
        self,
        user_id: int,
        *,
        nickname: str | None = None,
        avatar: str | None = None,
        sex: str | None = None,
        memo: str | None = None,
    ) -> UserRow:
        """Change the given fields (None leaves a field as it is)."""
        if nickname is not None:
            nickname = validate_nickname(nickname)
            if not nickname:
                raise ApiError("nickname must not be empty")
        user = await self._users.update_profile(
            user_id,
            nickname=nickname,
            avatar=None if avatar is None else validate_avatar(avatar, self._settings.media_base_url),
            sex=None if sex is None else validate_sex(sex),
            memo=None if memo is None else validate_memo(memo),
        )
        if user is None:
            raise ApiError("no such user")
        return user
