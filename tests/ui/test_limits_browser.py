"""The Limits page in headless Chromium: the nav link, live use, the per-key table."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.ui.conftest import LiveServer
from tests.ui.test_browser import Watched, browser, chromium, shoot, watched  # noqa: F401
from tests.ui.test_limits import busy_limits  # noqa: F401

pytestmark = pytest.mark.browser


async def test_limits_page_in_a_browser(
    watched: Watched,
    live_server: LiveServer,
    busy_limits: asyncio.Event,
) -> None:
    """From the nav, the Limits page shows each limiter with its use and parked tasks,
    and the tenant's key; when the slot frees, the live refresh shows it."""
    page = watched.page
    await page.goto(live_server.url + "/")
    await page.get_by_role("link", name="Limits").click()
    await expect(page.locator("h1")).to_have_text("Limits")
    exports = page.locator('table[data-table="limits"] tr[data-limit="exports"]')
    await expect(exports.locator('[data-field="in_use"]')).to_have_text("1 / 1")
    await expect(exports.locator('[data-field="parked"]')).to_have_text("2")
    await expect(page.locator('tr[data-limit="ingest"]')).to_contain_text("50 per 1s, burst 10")
    await expect(page.locator('tr[data-key="acme"]')).to_be_visible()
    await shoot(page, "limits")
    await shoot(page, "limits", "dark")
    busy_limits.set()  # the handlers finish: the parked tasks run, the slot frees
    await expect(exports.locator('[data-field="parked"]')).to_have_text("0", timeout=15_000)
