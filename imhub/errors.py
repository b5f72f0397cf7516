"""The error every layer raises for a refused request; the web layer renders it as
the seed's ``{code:-1,msg}`` envelope with ``status`` as the HTTP status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, msg: str, status: int = 200, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.extra = extra


class Unauthorized(ApiError):
    def __init__(self, msg: str = "not logged in or token expired") -> None:
        super().__init__(msg, status=401)


class Forbidden(ApiError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg, status=403)


class NotFound(ApiError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg, status=200)


class RateLimited(ApiError):
    def __init__(self, msg: str = "too many attempts, try again later", retry_after: int = 60) -> None:
        super().__init__(msg, status=429, retry_after=retry_after)
