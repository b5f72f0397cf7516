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


# --- helpers -------------------------------------------------------------------------

USER_FIELDS = {"id", "mobile", "avatar", "sex", "nickname", "online", "token", "memo", "createat"}


async def _register_login(client, mobile: str, passwd: str = "secret1", **extra) -> dict:
    r = await client.post("/user/register", data={"mobile": mobile, "passwd": passwd, **extra})
    assert (await r.json())["code"] == 0
    body = await (await client.post("/user/login", data={"mobile": mobile, "passwd": passwd})).json()
    assert body["code"] == 0
    return body["data"]


def _bearer(user: dict) -> dict:
    return {"Authorization": f"Bearer {user['token']}"}


# --- auth on the new routes ----------------------------------------------------------


async def test_me_needs_login_and_cookie_works(client) -> None:
    r = await client.post("/user/me")
    assert r.status == 401 and (await r.json())["code"] == -1
    me = await _register_login(client, "13800000010", nickname="al")
    # The login set the session cookie on the client's jar: the seed client's way.
    body = await (await client.post("/user/me")).json()
    assert body["code"] == 0 and body["data"]["id"] == me["id"]
    assert body["data"]["mobile"] == "13800000010" and body["data"]["token"] == ""
    assert set(body["data"]) == USER_FIELDS


async def test_userid_of_someone_else_is_forbidden(client) -> None:
    me = await _register_login(client, "13800000011")
    r = await client.post("/user/me", data={"userid": me["id"] + 1})
    assert r.status == 403 and "userid" in (await r.json())["msg"]


async def test_update_profile(client) -> None:
    me = await _register_login(client, "13800000012", nickname="before", memo="keep")
    body = await (await client.post("/user/update", json={"nickname": "after", "sex": "W"})).json()
    assert body["code"] == 0 and body["data"]["nickname"] == "after" and body["data"]["sex"] == "W"
    assert body["data"]["memo"] == "keep"
    for bad, msg in (
        ({"nickname": "x" * 65}, "nickname"),
        ({"nickname": "   "}, "nickname"),
        ({"sex": "Q"}, "sex"),
        ({"avatar": "javascript:alert(1)"}, "avatar"),
        ({"memo": "a\x00b"}, "memo"),
    ):
        r = await client.post("/user/update", json=bad, headers=_bearer(me))
        body = await r.json()
        assert r.status == 200 and body["code"] == -1 and msg in body["msg"], (bad, body)
    assert (await (await client.post("/user/me")).json())["data"]["nickname"] == "after"


async def test_logout_revokes_the_token(client) -> None:
    me = await _register_login(client, "13800000013")
    r = await client.post("/user/logout", headers=_bearer(me))
    assert (await r.json())["code"] == 0
    assert (await client.post("/user/me", headers=_bearer(me))).status == 401
    # Logging out again (or without a session) still succeeds.
    assert (await (await client.post("/user/logout")).json())["code"] == 0


async def test_change_password_revokes_every_token(client) -> None:
    first = await _register_login(client, "13800000014")
    second = (await (await client.post("/user/login", data={"mobile": "13800000014", "passwd": "secret1"})).json())[
        "data"
    ]
    r = await client.post(
        "/user/password", data={"oldpasswd": "wrong1", "newpasswd": "newsecret"}, headers=_bearer(first)
    )
    assert (await r.json()) == {"code": -1, "msg": "old password is wrong"}
    r = await client.post(
        "/user/password", data={"oldpasswd": "secret1", "newpasswd": "newsecret"}, headers=_bearer(first)
    )
    body = await r.json()
    assert body["code"] == 0 and len(body["data"]["token"]) >= 22
    for old in (first, second):
        assert (await client.post("/user/me", headers=_bearer(old))).status == 401
    assert (await client.post("/user/me", headers=_bearer(body["data"]))).status == 200
    login = await (await client.post("/user/login", data={"mobile": "13800000014", "passwd": "newsecret"})).json()
    assert login["code"] == 0


async def test_login_rate_limited_per_account(client) -> None:
    svc_limit = 10  # Settings.login_max_attempts default
    await client.post("/user/register", data={"mobile": "13800000015", "passwd": "secret1"})
    for _ in range(svc_limit):
        body = await (await client.post("/user/login", data={"mobile": "13800000015", "passwd": "bad"})).json()
        assert body["code"] == -1
    r = await client.post("/user/login", data={"mobile": "13800000015", "passwd": "secret1"})
    body = await r.json()
    assert r.status == 429 and body["code"] == -1 and body["retry_after"] > 0


async def test_find_by_id_and_mobile_privacy(client) -> None:
    a = await _register_login(client, "13800000016", nickname="alice")
    b = await _register_login(client, "13800000017", nickname="bob")  # client's cookie is now b's
    body = await (await client.post("/user/find", data={"id": a["id"]})).json()
    assert body["code"] == 0 and body["data"]["nickname"] == "alice"
    assert body["data"]["mobile"] == "" and body["data"]["token"] == ""  # strangers
    body = await (await client.post("/user/find", data={"mobile": "13800000016"})).json()
    assert body["code"] == 0 and body["data"]["id"] == a["id"]
    sent = await (await client.post("/contact/addfriend", data={"userid": b["id"], "dstid": a["id"]})).json()
    body = await (await client.post("/user/find", data={"id": a["id"]})).json()
    assert body["data"]["mobile"] == ""  # a request reveals nothing
    as_a = {"Authorization": f"Bearer {a['token']}"}
    r = await client.post("/contact/acceptfriend", data={"id": sent["data"]["request"]["id"]}, headers=as_a)
    assert (await r.json())["code"] == 0
    body = await (await client.post("/user/find", data={"id": a["id"]})).json()
    assert body["data"]["mobile"] == ""  # nor friendship: the mobile is private ...
    await client.post("/user/privacy", data={"showmobile": "1"}, headers=as_a)
    body = await (await client.post("/user/find", data={"id": a["id"]})).json()
    assert body["data"]["mobile"] == "13800000016"  # ... until a lets friends see it
    for bad, msg in (({}, "id or mobile"), ({"id": "abc"}, "integer"), ({"id": 99999}, "no such user"),
                     ({"mobile": "13900000000"}, "no user")):
        body = await (await client.post("/user/find", data=bad)).json()
        assert body["code"] == -1 and msg in body["msg"], (bad, body)


async def test_bad_requests_get_specific_errors(client) -> None:
    await _register_login(client, "13800000018")
    r = await client.post("/contact/addfriend", data="{nope", headers={"Content-Type": "application/json"})
    assert r.status == 200 and (await r.json()) == {"code": -1, "msg": "request body is not valid JSON"}
    r = await client.post("/contact/addfriend", data=b"x", headers={"Content-Type": "text/plain"})
    assert r.status == 415 and (await r.json())["code"] == -1
    r = await client.post("/user/update", data={"memo": "x" * 70_000})
    assert r.status == 413 and (await r.json())["code"] == -1
    r = await client.post("/contact/addfriend", json={"dstid": [1]})
    assert (await r.json()) == {"code": -1, "msg": "dstid must be an integer"}


async def test_login_rate_limited_per_address(client) -> None:
    await client.post("/user/register", data={"mobile": "13800000019", "passwd": "secret1"})
    # Spraying wrong passwords over many accounts from one address...
    for i in range(10):
        body = await (await client.post("/user/login", data={"mobile": f"1390000{i:04d}", "passwd": "bad"})).json()
        assert body["code"] == -1
    # ...blocks the address even for an account that has no failures.
    r = await client.post("/user/login", data={"mobile": "13800000019", "passwd": "secret1"})
    assert r.status == 429


async def test_chunked_oversized_body_is_413(client) -> None:
    """No Content-Length to check up front: the cap applies while reading."""
    await _register_login(client, "13800000020")

    async def body():
        yield b"memo="
        for _ in range(20):
            yield b"x" * 10_000

    r = await client.post("/user/update", data=body(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 413 and (await r.json())["code"] == -1


async def test_find_by_mobile_is_rate_limited(client) -> None:
    await _register_login(client, "13800000021")
    statuses = [(await client.post("/user/find", data={"mobile": f"1390000{i:04d}"})).status for i in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    # Lookups by id are not limited (ids are not secrets).
    assert (await client.post("/user/find", data={"id": 1})).status == 200
    body = await (await client.post("/user/find", json={"id": 1.5})).json()
    assert body == {"code": -1, "msg": "id must be an integer"}
