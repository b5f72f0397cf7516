"""Issue #18 bug 1: a chat's history view must not depend on the order in which the
conversation list (cmd 31) and a live message arrive after a reload, and a list too
short to scroll loads older pages until it fills the view or reaches the start."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.helpers import logged_in
from tests.e2e.test_web_client import (
    add_friend,
    conv_p,
    open_chat,
    send_text,
    wait_online,
)

pytestmark = pytest.mark.slow

HISTORY = 40  # more than the initial window (30) the client loads for a conversation


def hold_list_until_live_message(page: Any) -> list[str]:
    """Route the page's socket so the conversation list reply (cmd 31) reaches the page
    only after the next live message (cmd 10): the order a reload meets when the peer
    keeps writing. Returns the log of commands as delivered."""
    delivered: list[str] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        held: list[str] = []

        def from_server(message: Any) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            cmd = frame.get("cmd")
            if cmd == 31 and not delivered.count("10"):
                held.append(message)
                return
            ws.send(message)
            delivered.append(str(cmd))
            if cmd == 10:
                for m in held:
                    ws.send(m)
                    delivered.append("31")
                held.clear()

        server.on_message(from_server)

    page.route_web_socket("**/chat?*", route)
    return delivered


def loaded_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.get_by_test_id("msg-text").all_inner_texts()]


def test_history_survives_arrival_order_and_short_lists_fill(server: str, browser: Any) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Jack", "Kate"], errors) as (jack, kate):
        add_friend(kate, jack)
        conv = conv_p(jack, kate)
        open_chat(kate.page, conv)
        for i in range(1, HISTORY + 1):
            send_text(kate.page, f"h{i}")

        # Reload Jack's chat while Kate keeps writing: her message beats the list reply.
        page = jack.context.new_page()
        delivered = hold_list_until_live_message(page)
        open_chat(page, conv)
        send_text(kate.page, "live")
        page.locator('[data-testid="msg-text"]', has_text="live").wait_for()
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=\"msg-text\"]').length >= 31", timeout=10_000
        )
        assert delivered.index("10") < delivered.index("31"), delivered
        texts = loaded_texts(page)
        assert texts[-1] == "live" and texts[-2] == f"h{HISTORY}", texts
        page.close()

        # A tall window: the initial 30 messages do not fill it, so older pages load by
        # themselves until the start of the conversation (nothing to scroll to ask).
        jack.page.set_viewport_size({"width": 390, "height": 3600})
        open_chat(jack.page, conv)
        jack.page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=\"msg-text\"]')].some(e => e.innerText.trim() === 'h1')",
            timeout=10_000,
        )
        jack.page.get_by_test_id("older").filter(has_text="Beginning of the conversation").wait_for()
        assert loaded_texts(jack.page) == [f"h{i}" for i in range(1, HISTORY + 1)] + ["live"]
        wait_online(jack.page)
    assert not errors, errors
