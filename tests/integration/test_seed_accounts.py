"""The seed's /user/register and /user/login, as its client calls them."""

from __future__ import annotations


async def test_register_then_login_form(client) -> None:
    r = await client.post("/user/register", data={"mobile": "13800000001", "passwd": "secret1", "nickname": "a"})
    body = await r.json()
    assert r.status == 200 and body["code"] == 0
    user = body["data"]
    assert set(user) == {"id", "mobile", "avatar", "sex", "nickname", "online", "token", "memo", "createat"}
    assert user["token"] == ""

    r = await client.post("/user/login", data={"mobile": "13800000001", "passwd": "secret1"})
    body = await r.json()
    assert body["code"] == 0 and body["data"]["id"] == user["id"] and len(body["data"]["token"]) >= 22
    cookie = r.cookies["imhub_token"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_register_json_and_duplicate(client) -> None:
    payload = {"mobile": "13800000002", "passwd": "secret1"}
    assert (await (await client.post("/user/register", json=payload)).json())["code"] == 0
    body = await (await client.post("/user/register", json=payload)).json()
    assert body == {"code": -1, "msg": "this mobile number is already registered"}


async def test_wrong_password(client) -> None:
    await client.post("/user/register", data={"mobile": "13800000003", "passwd": "secret1"})
    body = await (await client.post("/user/login", data={"mobile": "13800000003", "passwd": "nope"})).json()
    assert body["code"] == -1 and "password" in body["msg"]
