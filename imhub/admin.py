"""The client ``imhub admin`` uses (:class:`AdminClient`): it always talks HTTP to a
running server (any worker, any node), authenticated by ``IMHUB_ADMIN_TOKEN``. The
server side is :mod:`imhub.services.admin`. See docs/operations.md.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class AdminError(Exception):
    """A refused or failed admin call, with the server's message."""


class AdminClient:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.token:
            raise AdminError("IMHUB_ADMIN_TOKEN is not set (the same token the server runs with)")
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(  # noqa: S310 - the operator's own server URL
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                reply = json.loads(exc.read())
            except ValueError:
                raise AdminError(f"HTTP {exc.code} from {self.base_url}{path}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach the server at {self.base_url}: {reason}") from None
        if not isinstance(reply, dict) or reply.get("code") != 0:
            msg = reply.get("msg") if isinstance(reply, dict) else None
            raise AdminError(str(msg or reply))
        return reply.get("data")
