"""The web client's Web Push side in Chromium: the Me tab offers push, the service
worker (/asset/sw.js) registers, and a push delivered to it (through the DevTools
protocol, standing in for the push service) becomes a notification showing the
message text, fetched with the user's session cookie; without a session it says
"New message"."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import urllib.request
from typing import Any

from imhub.client import Client
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_web_client import new_person, register_and_login

NOTIFICATIONS = """async () => {
  const reg = await navigator.serviceWorker.getRegistration('/asset/sw.js')
  const ns = reg ? await reg.getNotifications() : []
  return ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag }))
}"""

REGISTER = """async () => {
  const reg = await navigator.serviceWorker.register('/asset/sw.js', { scope: '/asset/' })
  const w = reg.installing || reg.waiting || reg.active
  if (w.state !== 'activated') {
    await new Promise((ok) => w.addEventListener('statechange', () => w.state === 'activated' && ok()))
  }
  return reg.scope
}"""


def post(base: str, path: str, token: str = "", **form: Any) -> dict[str, Any]:
    data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    req = urllib.request.Request(base + path, data=data, method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body


def wait_for(page: Any, fn: Any, timeout: float = 10.0) -> Any:
    """Poll ``fn``; the page's wait lets Playwright dispatch events (CDP) meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(100)


def test_push_becomes_a_notification_with_the_text(server: str, browser: Any) -> None:
    errors: list[str] = []
    alice = new_person(browser, server, "alice", errors)
    alice.context.grant_permissions(["notifications"])
    register_and_login(alice)
    page = alice.page
    page.get_by_test_id("tab-me").click()
    page.wait_for_url("**/me")
    cell = page.get_by_test_id("me-push")
    cell.wait_for()
    assert "Off" in cell.inner_text(), cell.inner_text()
    page.locator(".van-toast").last.wait_for(state="hidden")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "me-push.png"))

    # Bob (the Python client) writes to alice.
    bob_mobile = "138" + str(int(time.time() * 1000))[-8:]
    assert post(server, "/user/register", mobile=bob_mobile, passwd="secret-bob")["code"] == 0
    bob = post(server, "/user/login", mobile=bob_mobile, passwd="secret-bob")["data"]
    assert post(server, "/contact/addfriend", bob["token"], dstid=alice.id)["code"] == 0

    async def send() -> dict[str, Any]:
        async with Client(server, int(bob["id"]), str(bob["token"])) as c:
            return await c.send(alice.id, "hello from bob")

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        ack = pool.submit(asyncio.run, send()).result(30)

    assert page.evaluate(REGISTER).endswith("/asset/")
    cdp = alice.context.new_cdp_session(page)
    registrations: dict[str, str] = {}
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.update({r["scopeURL"]: r["registrationId"] for r in e["registrations"]}),
    )
    cdp.send("ServiceWorker.enable")
    reg_id = wait_for(page, lambda: registrations.get(server + "/asset/"))
    assert reg_id, registrations

    payload = json.dumps({"conv": ack["conv"], "count": 1})
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server, "registrationId": reg_id, "data": payload})
    shown = wait_for(page, lambda: page.evaluate(NOTIFICATIONS))
    assert shown == [{"title": "imhub", "body": "hello from bob", "tag": ack["conv"]}], shown

    # Logged out: the worker cannot read the text and says only "New message".
    alice.context.clear_cookies()
    payload = json.dumps({"conv": ack["conv"], "count": 2})
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server, "registrationId": reg_id, "data": payload})
    shown = wait_for(page, lambda: [n for n in page.evaluate(NOTIFICATIONS) if n["body"] != "hello from bob"])
    assert shown == [{"title": "imhub", "body": "2 new messages", "tag": ack["conv"]}], shown
    assert errors == []
    alice.context.close()
