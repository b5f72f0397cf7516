"""Issue #18 item 11, accessibility: axe-core (frontend/node_modules, pinned in
package-lock.json) finds no serious or critical violation on any view at phone and
desktop widths; icon buttons are named buttons; conversation rows work from the
keyboard; pinch-zoom is allowed; placeholders are readable (WCAG AA contrast)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.test_web_client import open_chat
from tests.e2e.tour import DESKTOP, PHONE, build_world, each_view

pytestmark = pytest.mark.slow

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"

RUN_AXE = """async () => {
  const r = await axe.run(document, { resultTypes: ['violations'] })
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(' | ')}`)
}"""

# WCAG 2 contrast of each input's ::placeholder against the field's background.
PLACEHOLDER_CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number)
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 })
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
  }
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor)
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3)
    }
    return [255, 255, 255]
  }
  const out = []
  for (const el of document.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (!el.placeholder || !el.offsetParent) continue
    const fg = rgb(getComputedStyle(el, '::placeholder').color)
    const [a, b] = [lum(fg.slice(0, 3)), lum(bg(el))].sort((x, y) => y - x)
    const ratio = (a + 0.05) / (b + 0.05)
    if (ratio < 4.5) out.push(`${el.placeholder}: ${ratio.toFixed(2)}`)
  }
  return out
}"""


def axe_violations(page: Any) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated, not a <script>: the server's CSP allows no inline script
    return list(page.evaluate(RUN_AXE))


@pytest.fixture(scope="module")
def axe_source() -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} missing: run make -C frontend build (npm ci installs axe-core)")


def test_no_serious_axe_violation_on_any_view(server: str, browser: Any, axe_source: None) -> None:
    errors: list[str] = []
    w = build_world(browser, server, "en", errors)
    found: dict[str, list[str]] = {}
    try:
        for size in (PHONE, DESKTOP):
            def check(page: Any, view: str, size: dict[str, int] = size) -> None:
                problems = axe_violations(page) + page.evaluate(PLACEHOLDER_CONTRAST)
                if problems:
                    found[f"{view}@{size['width']}"] = problems

            each_view(w, size, errors, check)
    finally:
        w.close()
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())
    assert not errors, errors


def test_keyboard_and_names(server: str, browser: Any) -> None:
    errors: list[str] = []
    w = build_world(browser, server, "en", errors)
    try:
        page = w.owner.page
        page.goto("/chats")
        viewport = page.evaluate("document.querySelector('meta[name=viewport]').content")
        assert "maximum-scale" not in viewport and "user-scalable" not in viewport, viewport

        # Icon buttons are buttons with a name.
        for name in ("Search", "Add contact"):
            assert page.get_by_role("button", name=name, exact=True).count() == 1, name
        # A conversation row: reached with Tab, opened with Enter.
        row = page.locator(f'[data-testid="conv-item"][data-conv="{w.conv}"]')
        row.wait_for()
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement?.dataset?.conv") == w.conv:
                break
        else:
            pytest.fail("Tab never reached the conversation row")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/chat/{w.conv}")
        page.get_by_test_id("messages").wait_for()

        open_chat(page, f"g{w.gid}")
        for name in ("Back", "Group info", "Voice message", "Emoji", "More"):
            button = page.get_by_role("button", name=name, exact=True)
            assert button.count() >= 1, name
            assert button.first.evaluate("el => el.tagName") == "BUTTON", name
        page.get_by_role("button", name="Back", exact=True).first.focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/chats")

        # The owner removes a member from the keyboard too (Enter asks, Esc cancels).
        page.goto(f"/groups/{w.gid}")
        member = page.locator(f'[data-testid="member"][data-user="{w.friend.id}"]')
        member.focus()
        assert page.evaluate("document.activeElement?.dataset?.user") == str(w.friend.id)
        page.keyboard.press("Enter")
        page.locator(".van-dialog").wait_for()
        page.wait_for_timeout(300)
        page.keyboard.press("Escape")
        page.locator(".van-dialog").wait_for(state="hidden")
        assert member.is_visible()
    finally:
        w.close()
    assert not errors, errors
