"""Item 1 in a real browser: a rebinding page in Chromium cannot read or drive the UI.

Chromium resolves ``evil.example`` to 127.0.0.1 (``--host-resolver-rules``), as a
rebinding DNS server would after the attacker's page loaded. The page (served by
Playwright, as the attacker's server served it before the switch) then reads
``/api/csrf`` and posts a purge with the token, same-origin as far as the browser
knows. The same page on ``localhost`` does succeed: the test can fail.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Route, async_playwright

import strego
from tests.ui.conftest import LiveServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ATTACK = """<!doctype html><title>cute cats</title><script>
(async () => {
  const result = {};
  try {
    const csrf = await fetch("/api/csrf");
    result.csrf = csrf.status;
    const token = csrf.ok ? (await csrf.json()).csrf_token : "";
    const purge = await fetch("/api/queues/default/pause", {
      method: "POST", headers: {"X-CSRF-Token": token},
    });
    result.action = purge.status;
  } catch (e) { result.error = String(e); }
  window.result = result;
})();
</script>"""


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium; missing means skip, except under CI=true (then fail)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} not found; CI=true: browser tests must run, not skip")
        pytest.skip(f"{CHROMIUM} not found")
    return CHROMIUM


@pytest.fixture
async def rebinding_browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-background-networking",
                "--host-resolver-rules=MAP evil.example 127.0.0.1",
                # Chromium alone blocks public pages from reaching loopback (Local Network
                # Access); other browsers do not, so the UI must refuse by itself.
                "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
                "PrivateNetworkAccessRespectPreflightResults",
            ],
        )
        yield browser
        await browser.close()


async def _run_attack(browser: Browser, origin: str) -> dict[str, Any]:
    page = await browser.new_page()

    async def serve_attack(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=ATTACK)

    await page.route(f"{origin}/attack", serve_attack)
    await page.goto(f"{origin}/attack")
    await page.wait_for_function("window.result !== undefined", timeout=10_000)
    result: dict[str, Any] = await page.evaluate("window.result")
    await page.close()
    return result


async def test_a_rebinding_page_cannot_read_or_act(
    rebinding_browser: Browser,
    live_server: LiveServer,
    client: strego.Client,
    broker: strego.RedisBroker,
) -> None:
    await client.enqueue(strego.Task("t"))
    inspector = strego.Inspector(broker)
    attacked = await _run_attack(rebinding_browser, f"http://evil.example:{live_server.port}")
    assert attacked == {"csrf": 400, "action": 400}, attacked
    assert not (await inspector.queue_info("default")).paused
    # The identical page on a name the UI trusts does pause the queue.
    trusted = await _run_attack(rebinding_browser, f"http://localhost:{live_server.port}")
    assert trusted == {"csrf": 200, "action": 200}, trusted
    assert (await inspector.queue_info("default")).paused
