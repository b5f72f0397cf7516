"""Who may try a password now: the login limits (OWASP's authentication and
credential-stuffing cheat sheets).

- An attempt is *reserved* before the password is verified, synchronously (no await
  between the check and the record), so concurrent guesses cannot all pass a check
  that only counts failures after a ~100 ms verify; a success gives the reservation back.
- Verifications in flight are capped per account and per address: a burst waits for
  nothing, it is refused with ``retry_after``.
- Per account: ``login_max_attempts`` failures per window, except from a *known
  device* — a browser holding a signed cookie from an earlier successful login to that
  account — which has its own count instead. A stranger's wrong guesses cannot lock
  the owner out of their own device.
- Per address: distinct accounts tried (``login_max_accounts_per_ip``), so the people
  behind one NAT retrying their own passwords do not add up, a password spray does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imhub.config import Settings
from imhub.errors import RateLimited
from imhub.ratelimit import DistinctLimiter, SlidingWindowLimiter

DEVICE_COOKIE = "imhub_device"
# How long a device stays known after its last successful login.
DEVICE_COOKIE_MAX_AGE = 180 * 24 * 3600


class DeviceCookies:
    """``<nonce>.<signature>``, the signature an HMAC over the account and the nonce:
    unforgeable without the key, and valid for that one account only."""

    def __init__(self, secret: str) -> None:
        # No configured key: a random one per process (cookies are then known only to
        # the process that issued them; the others fall back to the account limit).
        self._key = secret.encode() if secret else secrets.token_bytes(32)

    def _sign(self, account: str, nonce: str) -> str:
        mac = hmac.new(self._key, f"{account}\x00{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def issue(self, account: str) -> str:
        nonce = secrets.token_urlsafe(12)
        return f"{nonce}.{self._sign(account, nonce)}"

    def nonce(self, account: str, cookie: str) -> str | None:
        """The cookie's nonce if it was issued for ``account``, else None."""
        nonce, _, signature = cookie.partition(".")
        if not nonce or len(cookie) > 128:
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(account, nonce).encode()):
            return None
        return nonce


@dataclass
class Attempt:
    account: str
    address: str
    device: str | None  # the known device's nonce, if any


class LoginGuard:
    def __init__(self, settings: Settings) -> None:
        window = settings.login_window_seconds
        self.per_account = SlidingWindowLimiter(settings.login_max_attempts, window)
        self.per_device = SlidingWindowLimiter(settings.login_max_attempts, window)
        self.per_address = DistinctLimiter(settings.login_max_accounts_per_ip, window)
        self.devices = DeviceCookies(settings.device_cookie_secret.get_secret_value())
        self._max_in_flight_account = settings.login_in_flight_per_account
        self._max_in_flight_address = settings.login_in_flight_per_ip
        self._in_flight_account: dict[str, int] = {}
        self._in_flight_address: dict[str, int] = {}

    @contextmanager
    def attempt(self, account: str, address: str, device_cookie: str = "") -> Iterator[Attempt]:
        """Reserve one attempt or raise :class:`RateLimited`; hold it in flight for the
        ``with`` block. Call :meth:`succeeded` inside it on a correct password."""
        if (
            self._in_flight_account.get(account, 0) >= self._max_in_flight_account
            or self._in_flight_address.get(address, 0) >= self._max_in_flight_address
        ):
            raise RateLimited("too many logins in progress, try again in a moment", retry_after=1)
        device = self.devices.nonce(account, device_cookie) if device_cookie else None
        if device is not None and self.per_device.retry_after(device) > 0:
            device = None  # a known device that keeps failing is just another stranger
        limiter, key = (self.per_device, device) if device is not None else (self.per_account, account)
        wait = max(limiter.retry_after(key), self.per_address.retry_after(address, account))
        if wait > 0:
            raise RateLimited("too many failed logins, try again later", retry_after=math.ceil(wait))
        limiter.hit(key)
        self.per_address.hit(address, account)
        self._in_flight_account[account] = self._in_flight_account.get(account, 0) + 1
        self._in_flight_address[address] = self._in_flight_address.get(address, 0) + 1
        try:
            yield Attempt(account, address, device)
        finally:
            _release(self._in_flight_account, account)
            _release(self._in_flight_address, address)

    def succeeded(self, attempt: Attempt) -> str:
        """Give the reservations back; returns the device cookie to set."""
        if attempt.device is not None:
            self.per_device.reset(attempt.device)
        else:
            self.per_account.reset(attempt.account)
        self.per_address.forget(attempt.address, attempt.account)
        return self.devices.issue(attempt.account)


def _release(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
