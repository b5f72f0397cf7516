"""Refusals of the consent and membership rules (friends, requests, blocks, privacy,
groups): the stable codes live in :class:`imhub.errors.ErrorCode` (4600-4634, plus
``not_member`` and ``rate_limited``), listed in docs/protocol.md ("Social error
codes"); this module gives each its usual HTTP status."""

from __future__ import annotations

import math
from typing import Any

from imhub.errors import ErrorCode, Refused

# Authorization failures are 403; everything else is a business outcome (HTTP 200).
_FORBIDDEN = frozenset({ErrorCode.NOT_MEMBER, ErrorCode.ROLE_REQUIRED})

def refuse(code: ErrorCode, msg: str, *, status: int | None = None, **extra: Any) -> Refused:
    """The error to raise: ``raise refuse(ErrorCode.SELF_REQUEST, "...")``; ``status``
    overrides the usual one (e.g. "not a member" on one's own leave is a business
    outcome, 200, not an authorization failure)."""
    if status is None:
        status = 403 if code in _FORBIDDEN else 200
    return Refused(code, msg, status=status, **extra)


def rate_limited(msg: str, retry_after: float) -> Refused:
    return Refused(ErrorCode.RATE_LIMITED, msg, status=429, retry_after=max(1, math.ceil(retry_after)))
