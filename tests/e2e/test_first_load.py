"""First-load cost of the web client (issue #18, "bundle size and first-load time are
measured"): what the built bundle weighs (raw and gzip, as Vite reports it) and what
Chromium's performance API says about a cold load of the login page and of the chat
list (a logged-in user, empty HTTP cache). The figures are printed and written to
test-artifacts/e2e/first-load.json; docs/benchmarks.md "Web client" records them:

    .venv/bin/pytest tests/e2e/test_first_load.py -q -s

Nothing here asserts a duration (the box is shared): the test checks that each load
rendered its screen, fetched every resource successfully and that the timings exist."""

from __future__ import annotations

import gzip
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, ROOT
from tests.e2e.helpers import logged_in
from tests.e2e.test_web_client import (
    VIEWPORT,
    conv_p,
    open_chat,
    send_text,
)

pytestmark = pytest.mark.slow

APP = ROOT / "imhub" / "web" / "static" / "app"
RUNS = 5

# Navigation + paint timing of the current document, in ms from navigation start, and
# the bytes its resources took (transferSize: on the wire; decodedBodySize: unpacked).
TIMING_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0]
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]))
  const res = performance.getEntriesByType('resource')
  const sum = (f) => res.filter(f).reduce((n, r) => n + r.transferSize, 0)
  return {
    ttfb: nav.responseStart, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    fcp: paint['first-contentful-paint'] ?? null,
    requests: res.length + 1,
    transferred: nav.transferSize + sum(() => true),
    js: sum((r) => r.name.endsWith('.js')), css: sum((r) => r.name.endsWith('.css')),
  }
}"""


def bundle_sizes() -> dict[str, int]:
    """Every built asset by kind, raw and gzip-compressed (level 9, as Vite's report)."""
    out = {"js": 0, "js_gzip": 0, "css": 0, "css_gzip": 0, "files": 0}
    for path in sorted((APP / "assets").iterdir()):
        kind = path.suffix.lstrip(".")
        if kind not in ("js", "css"):
            continue
        data = path.read_bytes()
        out[kind] += len(data)
        out[f"{kind}_gzip"] += len(gzip.compress(data, 9))
        out["files"] += 1
    return out


def cold_load(browser: Any, base: str, path: str, ready: str, storage: Any = None) -> dict[str, Any]:
    """One load in a fresh context (empty cache); ``ready`` is the selector of the screen's
    content, and ``ready_ms`` when it was attached (ms from navigation start)."""
    context = browser.new_context(base_url=base, viewport=VIEWPORT, locale="en-US", storage_state=storage)
    failed: list[str] = []
    try:
        page = context.new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.goto(path, wait_until="load")
        page.wait_for_selector(ready, state="attached")
        ready_ms = page.evaluate("performance.now()")
        page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        timing = page.evaluate(TIMING_JS)
    finally:
        context.close()
    assert not failed, failed
    assert timing["fcp"] is not None and timing["fcp"] > 0, timing
    assert timing["js"] > 0 and timing["css"] > 0, timing
    return {**timing, "ready": ready_ms}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("ttfb", "fcp", "domContentLoaded", "load", "ready")
    return {
        **{f"{k}_median": round(statistics.median(r[k] for r in runs), 1) for k in keys},
        **{f"{k}_best": round(min(r[k] for r in runs), 1) for k in keys},
        "requests": runs[0]["requests"], "transferred": runs[0]["transferred"],
        "js": runs[0]["js"], "css": runs[0]["css"],
    }


def test_first_load(server: str, browser: Any) -> None:
    errors: list[str] = []
    with logged_in(browser, server, ["Lena", "Mo"], errors, befriend=True) as (user, friend):
        open_chat(user.page, conv_p(user, friend))
        send_text(user.page, "hello")
        storage = user.context.storage_state()
    assert not errors, errors

    login = [cold_load(browser, server, "/login", '[data-testid="login-submit"]') for _ in range(RUNS)]
    chats = [cold_load(browser, server, "/chats", '[data-testid="conv-item"]', storage) for _ in range(RUNS)]
    report = {"bundle": bundle_sizes(), "login": summary(login), "chats": summary(chats), "runs": RUNS}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Path(ARTIFACTS / "first-load.json").write_text(json.dumps(report, indent=2))
    print("\nfirst load:", json.dumps(report, indent=2))
    assert report["bundle"]["js"] > 0 and report["bundle"]["css"] > 0
