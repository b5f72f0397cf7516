"""Helpers for tests of the server API (/server/v1/) and webhooks."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from imhub.web.context import SERVICES
from tests.integration.chatkit import User


async def make_key(client: TestClient, scopes: str = "users,messages,groups,read", name: str = "test") -> str:
    _, key = await client.server.app[SERVICES].apikeys.create(name, scopes)
    return key


async def call(
    client: TestClient, key: str, method: str, path: str, body: Any = None, **query: Any
) -> tuple[int, dict[str, Any]]:
    """One server API call: (HTTP status, reply envelope)."""
    r = await client.request(
        method, "/server/v1" + path, json=body, params={k: str(v) for k, v in query.items()},
        headers={"Authorization": f"Bearer {key}"},
    )
    return r.status, await r.json()


async def provisioned(client: TestClient, key: str, ext_id: str, nickname: str = "") -> User:
    """A user provisioned by ext_id, with a login token from the API."""
    status, body = await call(client, key, "POST", "/users", {"ext_id": ext_id, "nickname": nickname or ext_id})
    assert status == 200, body
    status, tok = await call(client, key, "POST", f"/users/{ext_id}/tokens", {"ttl_seconds": 3600})
    assert status == 200, tok
    return User(body["data"]["id"], tok["data"]["token"], "")
