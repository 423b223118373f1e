"""Headless Chromium loads the ``adk web`` dev UI over a Redis session store and sees our sessions.

Deselected by default (``-m "not browser"`` in pyproject); run with ``pytest -m browser``.
Needs Debian's chromium at /usr/bin/chromium (or CHROMIUM_PATH) and Playwright (the ``browser`` extra:
``pip install -e '.[dev,browser]'``); fails, never skips, if either is missing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import redis

from tests.adk_web import _http, _run, _texts, adk_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
TEXT = "hello from the browser test"
SCREENSHOT = Path("/tmp/adk_redis_browser.png")


@pytest.mark.browser
def test_dev_ui_lists_the_redis_sessions(
    redis_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install -e '.[dev,browser]'")
    # A throwaway HOME for the server and the browser: nothing lands in the real home, and the
    # recorded telemetry choice keeps the dev UI's consent dialog from covering the page.
    home = tmp_path / "home"
    (home / ".adk").mkdir(parents=True)
    (home / ".adk" / "config.json").write_text(json.dumps({"telemetry": False}))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    log = tmp_path / "adk.log"
    started = time.monotonic()
    try:
        with adk_server("web", redis_url, prefix, log) as base:
            sessions = f"{base}/apps/hello_agent/users/user/sessions"  # "user": the dev UI's default user
            sid = _http("POST", sessions, {"state": {"mood": "sunny"}})["id"]
            said = _texts(_run(base, "hello_agent", "user", sid, TEXT))
            assert said[-1] == "Hello! This is your visit number 1 (1 for everyone)."
            other = _http("POST", sessions, {"state": {"mood": "rainy"}})["id"]

            with sync_playwright() as pw:
                ctx = pw.chromium.launch_persistent_context(
                    str(tmp_path / "profile"),
                    executable_path=CHROMIUM,
                    headless=True,
                    args=CHROMIUM_ARGS,
                    viewport={"width": 1400, "height": 900},
                    timeout=30_000,
                )
                try:
                    page = ctx.new_page()
                    page.set_default_timeout(WAIT_MS)
                    page.goto(f"{base}/dev-ui/?app=hello_agent&userId=user&session={sid}")
                    # The session's events, read back from Redis, are rendered in the chat.
                    expect(page.get_by_text(TEXT).first).to_be_visible(timeout=WAIT_MS)
                    expect(page.get_by_text(said[-1]).first).to_be_visible(timeout=WAIT_MS)
                    # The session picker lists both sessions of the user, including the one not opened.
                    page.locator("button", has_text=sid).first.click()
                    expect(page.get_by_text("Select a Session", exact=True)).to_be_visible(timeout=WAIT_MS)
                    expect(page.get_by_text(other, exact=True)).to_be_visible(timeout=WAIT_MS)
                    expect(page.get_by_text(sid, exact=True).first).to_be_visible(timeout=WAIT_MS)
                    page.screenshot(path=str(SCREENSHOT))
                finally:
                    ctx.close()
    finally:
        with redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                r.delete(*keys)
    assert time.monotonic() - started < 40
