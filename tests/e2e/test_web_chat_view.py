"""Issue #18, the chat view: what real use found there. Each test drives two (or three)
people in Chromium against a real ``imhub serve``, at phone (390x844) and desktop
(1280x800) widths where the layout matters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_group_admin import create_group
from tests.e2e.test_web_client import (
    Person,
    add_friend,
    conv_p,
    field,
    new_person,
    open_chat,
    register_and_login,
    sample_png,
    send_text,
    shot,
)

pytestmark = pytest.mark.slow

# Every test registers its own people: more than the default 20 per address and hour.
SERVER_ENV = {"IMHUB_REGISTER_MAX_PER_IP": "1000"}

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]


@pytest.fixture
def pair(server: str, browser: Any) -> Iterator[tuple[Person, Person, list[str]]]:
    """Two registered friends; the test's errors list is checked at the end."""
    errors: list[str] = []
    a = new_person(browser, server, "Jack", errors)
    b = new_person(browser, server, "Kate", errors)
    try:
        register_and_login(a)
        register_and_login(b)
        add_friend(a, b)
        yield a, b, errors
    finally:
        a.context.close()
        b.context.close()
    assert not errors, errors


# How far the message list is scrolled above its bottom, in px (a JS expression).
GAP = "((el) => el.scrollHeight - el.scrollTop - el.clientHeight)(document.querySelector('[data-testid=\"messages\"]'))"


def gap(page: Any) -> float:
    """How far the message list is scrolled above its bottom, in px."""
    return float(page.evaluate(GAP))


def send_image(page: Any, width: int = 1200, height: int = 900) -> None:
    sent = page.locator('[data-testid="message"][data-media="4"][data-state="sent"]')
    before = sent.count()
    page.get_by_test_id("more-toggle").click()
    page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png(width, height)}
    )
    sent.nth(before).wait_for()


# ---- bug 2: images must not stop the chat following new messages ----------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_chat_follows_new_messages_while_images_load(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    kate.page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    for i in range(14):
        send_text(jack.page, f"filler {i}")
    # Kate's images arrive only when the test lets them: the bubbles are laid out
    # (and the list scrolled) long before the pictures are there.
    held: list[Any] = []
    kate.page.route("**/mnt/**", lambda route: held.append(route))
    open_chat(kate.page, conv)
    kate.page.locator('[data-testid="msg-text"]', has_text="filler 13").wait_for()
    kate.page.wait_for_function(f"() => {GAP} < 4")

    send_image(jack.page, 1200, 900)
    send_image(jack.page, 600, 1200)
    send_text(jack.page, "look at these")
    kate.page.locator('[data-testid="msg-text"]', has_text="look at these").wait_for()
    imgs = kate.page.get_by_test_id("msg-image")
    assert imgs.count() == 2
    # The boxes are reserved from the sizes sent with the messages (180 px wide at most,
    # 220 px high at most), before any pixel arrived.
    boxes = [imgs.nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and abs(boxes[0]["width"] - 180) < 1.5 and abs(boxes[0]["height"] - 135) < 1.5, boxes
    assert boxes[1] and abs(boxes[1]["width"] - 110) < 1.5 and abs(boxes[1]["height"] - 220) < 1.5, boxes
    kate.page.wait_for_timeout(200)
    assert gap(kate.page) < 4

    for route in held:
        route.continue_()
    kate.page.unroute("**/mnt/**")
    kate.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"msg-image\"]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    kate.page.wait_for_timeout(300)
    assert gap(kate.page) < 4, "the newest message went off-screen when the images loaded"
    if viewport is PHONE:
        shot(kate.page, "chat-phone")

    # Scrolled up, new messages do not move the view; a button says they are there.
    kate.page.evaluate("() => { document.querySelector('[data-testid=\"messages\"]').scrollTop = 0 }")
    kate.page.wait_for_timeout(200)
    assert kate.page.get_by_test_id("new-messages-button").count() == 0
    send_text(jack.page, "are you there?")
    send_text(jack.page, "hello?")
    kate.page.locator('[data-testid="msg-text"]', has_text="hello?").wait_for(state="attached")
    button = kate.page.get_by_test_id("new-messages-button")
    button.wait_for()
    assert "2" in button.inner_text()
    assert gap(kate.page) > 200
    button.click()
    kate.page.wait_for_function(f"() => {GAP} < 4")
    button.wait_for(state="detached")


# ---- bug 5: a group I am no longer in ---------------------------------------------------


def join_group(p: Person, gid: int) -> None:
    page = p.page
    page.goto("/groups")
    page.get_by_test_id("join-group").click()
    field(page, "join-group-id").fill(str(gid))
    page.get_by_test_id("join-group-submit").click()
    page.wait_for_url(f"**/groups/{gid}")


def remove_member(owner: Person, gid: int, member: Person) -> None:
    page = owner.page
    page.goto(f"/groups/{gid}")
    page.locator(f'[data-testid="member"][data-user="{member.id}"]').click()
    page.locator(".van-dialog").get_by_role("button", name="Remove from group").click()
    page.locator(f'[data-testid="member"][data-user="{member.id}"]').wait_for(state="detached")


def drop_group_events(page: Any) -> None:
    """The page's socket loses the group-event messages (media 10): the client learns of
    a removal only from the refusal of its next message."""

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_server(message: Any) -> None:
            if isinstance(message, str) and '"media":10' in message.replace(" ", ""):
                return
            ws.send(message)

        server.on_message(from_server)

    page.route_web_socket("**/chat?*", route)


def leave_group(p: Person, gid: int) -> None:
    page = p.page
    page.goto(f"/groups/{gid}")
    page.get_by_test_id("group-leave").click()
    page.locator(".van-dialog__confirm").click()
    page.wait_for_url("**/groups")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_left_or_removed_member_cannot_write_and_sees_why(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    kate.page.set_viewport_size(viewport)
    gid = create_group(jack, "Climbing")
    join_group(kate, gid)

    # Kate leaves in one tab; the other tab is not told (its group events are lost):
    # the message it sends fails with the server's reason, and the composer is
    # disabled from then on.
    page = kate.context.new_page()
    page.set_viewport_size(viewport)
    drop_group_events(page)
    open_chat(page, f"g{gid}")
    send_text(page, "hi all")
    assert page.get_by_test_id("composer-disabled").count() == 0
    leave_group(kate, gid)
    page.get_by_test_id("composer-input").fill("anyone?")
    page.get_by_test_id("send").click()
    failed = page.locator('[data-testid="message"][data-state="failed"]', has_text="anyone?")
    failed.wait_for()
    assert "not a member of this group" in failed.get_by_test_id("msg-error").inner_text()
    page.get_by_test_id("composer-disabled").wait_for()
    assert page.get_by_test_id("composer-input").count() == 0
    page.close()

    # Back in, then removed while the chat is open: the composer gives way to why.
    join_group(kate, gid)
    open_chat(kate.page, f"g{gid}")
    kate.page.get_by_test_id("composer-input").wait_for()
    remove_member(jack, gid, kate)
    kate.page.locator('[data-testid="event-line"]', has_text="removed you").wait_for()
    notice = kate.page.get_by_test_id("composer-disabled")
    notice.wait_for()
    assert "no longer a member" in notice.inner_text()
    assert kate.page.get_by_test_id("composer-input").count() == 0


# ---- bug 8: contact cards -------------------------------------------------------------


def send_card(page: Any, name: str) -> None:
    page.get_by_test_id("more-toggle").click()
    page.locator(".more-item", has_text="Contact card").click()
    page.locator(".van-action-sheet__item", has_text=name).click()
    page.locator('[data-testid="message"][data-media="9"][data-state="sent"]').last.wait_for()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_contact_card_names_the_person_and_opens_a_friends_chat(
    pair: Any, server: str, browser: Any, viewport: dict[str, int]
) -> None:
    jack, kate, errors = pair
    kate.page.set_viewport_size(viewport)
    liam = new_person(browser, server, "Liam", errors)
    try:
        register_and_login(liam)
        add_friend(jack, liam)
        conv = conv_p(jack, kate)
        open_chat(jack.page, conv)
        open_chat(kate.page, conv)
        send_card(jack.page, "Liam")
        card = kate.page.locator('[data-testid="message"][data-media="9"]').last
        card.wait_for()
        card.locator(".card").click()
        dialog = kate.page.locator(".van-dialog")
        dialog.wait_for()
        assert "Add friend: Liam?" in dialog.inner_text()
        dialog.locator(".van-dialog__confirm").click()
        kate.page.locator(".van-toast", has_text="Friend added").wait_for()

        # Now a friend: the card opens their chat.
        card.locator(".card").click()
        kate.page.wait_for_url(f"**/chat/{conv_p(kate, liam)}")
        kate.page.get_by_test_id("chat-title").filter(has_text="Liam").wait_for()
        kate.page.get_by_test_id("composer-input").fill("hi Liam")
        kate.page.get_by_test_id("send").click()
        open_chat(liam.page, conv_p(kate, liam))
        liam.page.locator('[data-testid="msg-text"]', has_text="hi Liam").wait_for()
    finally:
        liam.context.close()


# ---- bug 9: profile changes live, the notification prompt, logout ----------------------

UPDATE_PROFILE_JS = """async ([nickname, png]) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0))
  const up = new FormData()
  up.append('file', new Blob([bytes], { type: 'image/png' }), 'me.png')
  const file = await (await fetch('/attach/upload', { method: 'POST', body: up })).json()
  const form = new FormData()
  form.append('nickname', nickname)
  form.append('avatar', file.data)
  const res = await (await fetch('/user/update', { method: 'POST', body: form })).json()
  return [res.code, file.data]
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_profile_change_reaches_an_open_chat(pair: Any, viewport: dict[str, int]) -> None:
    import base64

    jack, kate, _ = pair
    kate.page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    send_text(jack.page, "hello from Jack")
    open_chat(kate.page, conv)
    kate.page.locator('[data-testid="msg-text"]', has_text="hello from Jack").wait_for()
    assert kate.page.get_by_test_id("chat-title").inner_text() == "Jack"

    png = base64.b64encode(sample_png(200, 200)).decode()
    code, avatar = jack.page.evaluate(UPDATE_PROFILE_JS, ["Captain Jack", png])
    assert code == 0 and avatar
    kate.page.get_by_test_id("chat-title").filter(has_text="Captain Jack").wait_for(timeout=5000)
    their = kate.page.locator('[data-testid="message"]', has_text="hello from Jack").locator("img").first
    their.wait_for()
    assert (their.get_attribute("src") or "").endswith(avatar)


NOTIFY_SPY_JS = """
Object.defineProperty(Notification, 'permission', { get: () => 'default' })
window.__asked = []
Notification.requestPermission = () => {
  window.__asked.push(!!localStorage.getItem('imhub.session'))
  return Promise.resolve('default')
}
"""


def test_notification_prompt_after_login_and_logout_confirms(server: str, browser: Any) -> None:
    errors: list[str] = []
    p = new_person(browser, server, "Nina", errors)
    try:
        register_and_login(p)
        page = p.page
        page.goto("/me")
        page.get_by_test_id("logout").click()
        dialog = page.locator(".van-dialog")
        dialog.wait_for()
        assert "Log out" in dialog.inner_text()
        dialog.locator(".van-dialog__cancel").click()
        dialog.wait_for(state="hidden")
        assert page.url.endswith("/me")
        page.get_by_test_id("logout").click()
        page.locator(".van-dialog__confirm").click()
        page.wait_for_url("**/login*")

        p.context.add_init_script(NOTIFY_SPY_JS)
        page.reload()
        field(page, "login-mobile").fill(p.mobile)
        field(page, "login-passwd").fill("wrong password")
        page.get_by_test_id("login-submit").click()
        page.locator(".van-toast").last.wait_for()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__asked") == [], "asked before the login succeeded"
        field(page, "login-passwd").fill(p.passwd)
        page.get_by_test_id("login-submit").click()
        page.wait_for_url("**/chats")
        assert page.evaluate("window.__asked") == [True]
    finally:
        p.context.close()
    assert not errors, errors


# ---- item 12: first unread, date lines, runs of one sender ------------------------------


def send_many(page: Any, texts: list[str]) -> None:
    box = page.get_by_test_id("composer-input")
    for text in texts:
        box.fill(text)
        box.press("Enter")
    page.locator('[data-testid="message"][data-state="sent"]', has_text=texts[-1]).last.wait_for()


IN_VIEW_JS = """(el) => { const box = document.querySelector('[data-testid="messages"]').getBoundingClientRect();
  const r = el.getBoundingClientRect(); return r.top >= box.top - 1 && r.bottom <= box.bottom + 1 }"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_opening_lands_at_first_unread_with_days_and_runs(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    kate.page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    send_many(jack.page, [f"old {i}" for i in range(1, 4)])
    open_chat(kate.page, conv)
    kate.page.locator('[data-testid="msg-text"]', has_text="old 3").wait_for()
    jack.page.locator('[data-testid="message"][data-receipt="read"]', has_text="old 3").wait_for()  # Kate read them
    kate.page.goto("/chats")
    unread = 45  # more than the 30 messages a chat loads first
    send_many(jack.page, [f"new {i}" for i in range(1, unread + 1)])
    item = kate.page.locator(f'[data-testid="conv-item"][data-conv="{conv}"]')
    item.filter(has_text=f"new {unread}").wait_for()
    item.click()

    divider = kate.page.get_by_test_id("unread-divider")
    divider.wait_for()
    first_new = kate.page.locator('[data-testid="message"]', has_text="new 1").first
    kate.page.wait_for_function(f"() => ({IN_VIEW_JS})(document.querySelector('[data-testid=\"unread-divider\"]'))")
    assert first_new.evaluate(IN_VIEW_JS)
    assert not kate.page.locator('[data-testid="message"]', has_text=f"new {unread}").evaluate(IN_VIEW_JS)
    order = kate.page.locator('[data-testid="unread-divider"], [data-testid="msg-text"]').evaluate_all(
        "els => els.map(e => e.dataset.testid === 'unread-divider' ? '|' : e.innerText.trim())"
    )
    at = order.index("|")
    assert order[at - 1] == "old 3" and order[at + 1] == "new 1", order[at - 2: at + 3]
    assert kate.page.get_by_test_id("new-messages-button").count() == 0

    # One date line (all of today), one avatar per run, the time once per run and on hover.
    days = kate.page.get_by_test_id("day-separator").all_inner_texts()
    assert [d.strip() for d in days] == ["Today"]
    runs = kate.page.locator('[data-testid="message"]').evaluate_all(
        "els => els.filter(e => e.innerText.includes('new ')).map(e => [!!e.querySelector("
        "'[data-testid=\"msg-avatar\"]'), !!(e.querySelector('[data-testid=\"msg-time\"]')?.innerText.trim())])"
    )
    assert len(runs) == unread
    assert runs[0] == [True, False] and runs[-1] == [False, True]
    assert all(r == [False, False] for r in runs[1:-1]), runs
    bubble = first_new.get_by_test_id("bubble")
    assert re.fullmatch(r"\d\d:\d\d", bubble.get_attribute("title") or "")
    kate.page.screenshot(path=f"/tmp/webchat-unread-{viewport['width']}.png")


# ---- item 13: drafts, the emoji panel, voice dots, the image viewer, uploads ------------


def test_drafts_are_kept_per_conversation_and_user(pair: Any, server: str, browser: Any) -> None:
    jack, kate, errors = pair
    liam = new_person(browser, server, "Liam", errors)
    try:
        register_and_login(liam)
        add_friend(kate, liam)
        with_jack, with_liam = conv_p(jack, kate), conv_p(kate, liam)
        page = kate.page
        open_chat(page, with_jack)
        page.get_by_test_id("composer-input").fill("half a thought for Jack")
        open_chat(page, with_liam)
        assert page.get_by_test_id("composer-input").input_value() == ""
        page.get_by_test_id("composer-input").fill("and one for Liam")
        page.go_back()  # within the app
        page.get_by_test_id("composer-input").wait_for()
        assert page.get_by_test_id("composer-input").input_value() == "half a thought for Jack"
        page.reload()
        page.get_by_test_id("composer-input").wait_for()
        assert page.get_by_test_id("composer-input").input_value() == "half a thought for Jack"
        open_chat(page, with_liam)
        assert page.get_by_test_id("composer-input").input_value() == "and one for Liam"
        # Sending empties the draft for good.
        page.get_by_test_id("send").click()
        page.locator('[data-testid="message"][data-state="sent"]', has_text="and one for Liam").wait_for()
        page.reload()
        page.get_by_test_id("composer-input").wait_for()
        assert page.get_by_test_id("composer-input").input_value() == ""
        stored = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('imhub.drafts.'))")
        assert stored == [f"imhub.drafts.{kate.id}"]
    finally:
        liam.context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_emoji_panel_stays_open_and_has_backspace(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    page = kate.page
    page.set_viewport_size(viewport)
    open_chat(page, conv_p(jack, kate))
    page.get_by_test_id("composer-input").fill("ok ")
    page.get_by_test_id("emoji-toggle").click()
    grid = page.get_by_test_id("emoji-grid")
    emojis = grid.locator("button")
    first, second = emojis.nth(0).inner_text(), emojis.nth(1).inner_text()
    emojis.nth(0).click()
    emojis.nth(1).click()
    emojis.nth(1).click()
    page.get_by_test_id("emoji-backspace").click()
    assert page.get_by_test_id("composer-input").input_value() == f"ok {first}{second}"
    page.get_by_test_id("emoji-send").click()
    page.locator('[data-testid="message"][data-state="sent"]', has_text=f"ok {first}{second}").wait_for()
    assert grid.is_visible(), "the emoji panel closed after sending"
    emojis.nth(1).click()
    page.get_by_test_id("send").click()
    page.locator('[data-testid="message"][data-state="sent"]', has_text=second).last.wait_for()
    assert grid.is_visible()
    assert page.get_by_test_id("composer-input").input_value() == ""


def record_voice(page: Any, ms: int = 1500) -> None:
    page.get_by_test_id("voice-toggle").click()
    hold = page.get_by_test_id("voice-hold")
    box = hold.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.get_by_test_id("recording").wait_for()
    page.wait_for_timeout(ms)
    page.mouse.up()
    page.locator('[data-testid="message"][data-media="3"][data-state="sent"]').last.wait_for()
    page.get_by_test_id("voice-toggle").click()


def test_unheard_voice_messages_have_a_dot(pair: Any) -> None:
    jack, kate, _ = pair
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    open_chat(kate.page, conv)
    record_voice(jack.page)
    voice = kate.page.locator('[data-testid="message"][data-media="3"]').last
    voice.wait_for()
    voice.get_by_test_id("voice-unheard").wait_for()
    assert jack.page.get_by_test_id("voice-unheard").count() == 0  # my own: no dot
    voice.get_by_test_id("msg-voice").click()
    voice.get_by_test_id("voice-unheard").wait_for(state="detached")
    kate.page.reload()
    kate.page.locator('[data-testid="message"][data-media="3"]').last.wait_for()
    assert kate.page.get_by_test_id("voice-unheard").count() == 0


INDEX_IS = "want => document.querySelector('.van-image-preview__index').innerText.replace(/ /g, '') === want"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_image_viewer_goes_through_the_chats_images_and_downloads(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    page = kate.page
    page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    send_image(jack.page, 800, 600)
    send_text(jack.page, "between")
    send_image(jack.page, 640, 960)
    open_chat(page, conv)
    imgs = page.get_by_test_id("msg-image")
    imgs.nth(1).wait_for()
    originals = jack.page.locator('[data-testid="message"][data-media="4"]').count()
    assert originals == 2
    imgs.nth(0).click()
    viewer = page.locator(".van-image-preview")
    viewer.wait_for()
    index = page.locator(".van-image-preview__index")
    assert index.inner_text().replace(" ", "") == "1/2"
    download = page.get_by_test_id("image-download")
    first_href = download.get_attribute("href") or ""
    assert download.get_attribute("download") and "/mnt/" in first_href
    page.get_by_test_id("image-next").click()
    page.wait_for_function(INDEX_IS, arg="2/2")
    second_href = download.get_attribute("href") or ""
    assert second_href != first_href and "/mnt/" in second_href
    with page.expect_download() as got:
        download.click()
    assert got.value.suggested_filename == second_href.rsplit("/", 1)[1]
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(INDEX_IS, arg="1/2")
    page.locator(".van-image-preview__close-icon").click()
    viewer.wait_for(state="hidden")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_uploads_show_progress_in_the_chat_and_can_be_cancelled(pair: Any, viewport: dict[str, int]) -> None:
    jack, kate, _ = pair
    page = kate.page
    page.set_viewport_size(viewport)
    conv = conv_p(jack, kate)
    open_chat(jack.page, conv)
    open_chat(page, conv)
    held: list[Any] = []
    page.route("**/attach/upload", lambda route: held.append(route))

    page.get_by_test_id("more-toggle").click()
    page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png(800, 600)}
    )
    upload = page.get_by_test_id("upload")
    upload.wait_for()
    upload.get_by_test_id("upload-progress").wait_for()
    assert upload.locator("img").get_attribute("src", timeout=2000).startswith("blob:")
    # Not blocking: the user goes on writing while the file is on its way.
    send_text(page, "while it uploads")
    jack.page.locator('[data-testid="msg-text"]', has_text="while it uploads").wait_for()
    upload.get_by_test_id("upload-cancel").click()
    upload.wait_for(state="detached")
    page.wait_for_timeout(200)
    for route in held:
        try:
            route.continue_()
        except Exception:
            pass  # the browser gave up on it (cancelled)
    page.unroute("**/attach/upload")
    page.wait_for_timeout(500)
    assert jack.page.get_by_test_id("msg-image").count() == 0, "a cancelled upload was sent"

    # Left alone, it finishes: the bubble gives way to the message.
    page.get_by_test_id("more-toggle").click()
    page.get_by_test_id("image-input").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": sample_png(800, 600)}
    )
    page.locator('[data-testid="message"][data-media="4"][data-state="sent"]').wait_for()
    page.get_by_test_id("upload").wait_for(state="detached")
    jack.page.get_by_test_id("msg-image").wait_for()
