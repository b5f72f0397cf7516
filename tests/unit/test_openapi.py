"""The OpenAPI table and the router describe the same POST routes."""

from __future__ import annotations

from pathlib import Path

from imhub.app import build_app
from imhub.config import Settings
from imhub.web.openapi import OPERATIONS, openapi_document


def test_every_api_route_is_documented(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path))
    routed = {
        r.resource.canonical
        for r in app.router.routes()
        if r.method == "POST"
        and r.resource is not None
        and r.resource.canonical.startswith(("/user/", "/contact/", "/message/", "/push/"))
    }
    assert routed == {op.path for op in OPERATIONS}
    assert any(r.method == "GET" and r.resource.canonical == "/openapi.json" for r in app.router.routes())  # type: ignore[union-attr]


def test_document_shape() -> None:
    doc = openapi_document()
    login = doc["paths"]["/user/login"]["post"]
    assert "security" not in login and "429" in login["responses"]
    add = doc["paths"]["/contact/addfriend"]["post"]
    body = add["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert body["required"] == ["dstid"] and set(body["properties"]) == {"userid", "dstid", "memo"}
    assert {"401", "403", "413", "415"} <= set(add["responses"])
    user = doc["components"]["schemas"]["User"]
    assert set(user["required"]) == {"id", "mobile", "avatar", "sex", "nickname", "online", "token", "memo", "createat"}
