"""The Periodic page in headless Chromium: the viewer's local time, the run log, and
pause / run now / delete through the CSRF-guarded forms."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect

import strego
from tests.conftest import wait_until
from tests.ui.conftest import LiveServer
from tests.ui.test_browser import Watched, browser, chromium, shoot, watched

pytestmark = pytest.mark.browser

__all__ = ["browser", "chromium", "watched"]  # the browser fixtures, shared


@pytest.fixture
async def declared(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[strego.Server, strego.Inspector]]:
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    server = strego.Server(
        broker,
        periodic=[
            strego.Periodic("reports:daily", cron="0 9 * * *", tz="Europe/Berlin"),
            strego.Periodic("heartbeat", every=3600, name="hb"),
        ],
    )
    await server.start()
    inspector = strego.Inspector(broker)
    await wait_until(lambda: _started(inspector), timeout=10)
    yield server, inspector
    await server.stop()
    await broker.aclose()


async def _started(inspector: strego.Inspector) -> bool:
    infos = await inspector.periodic()
    return len(infos) == 2 and all(i.next_run for i in infos)


async def test_periodic_page_actions(
    watched: Watched, live_server: LiveServer, declared: tuple[strego.Server, strego.Inspector]
) -> None:
    """Open Periodic from the nav; Pause and Run now act and say so; Delete is offered
    once no live worker declares a schedule (orphaned) and removes it."""
    server, inspector = declared
    page = watched.page
    await page.goto(live_server.url + "/")
    await page.click('nav a:has-text("Periodic")')
    daily = page.locator('tr[data-periodic="reports:daily"]')
    await expect(daily.locator('[data-field="schedule"]')).to_contain_text("Europe/Berlin")
    await expect(daily.locator('[data-field="next"]')).to_contain_text("09:00")
    await expect(daily.locator('[data-field="next"] time')).to_contain_text("(your time)")
    hb = page.locator('tr[data-periodic="hb"]')
    await hb.locator('button:has-text("Pause")').click()
    await expect(page.locator(".flash")).to_have_text("Periodic hb paused.")
    await expect(hb.locator('[data-field="state"]')).to_contain_text("paused")
    await hb.locator('button:has-text("Run now")').click()
    await expect(page.locator(".flash")).to_contain_text(
        "Periodic hb triggered: task periodic:hb:manual-"
    )
    await hb.locator("summary").click()
    await expect(hb.locator(".runs li")).to_have_count(1)
    await shoot(page, "periodic")
    await shoot(page, "periodic", "dark")
    await hb.locator(".runs a").click()  # the run's task page
    await expect(page.locator("h1")).to_contain_text("heartbeat")
    await page.goto(live_server.url + "/periodic")
    await expect(page.locator('tr[data-periodic="hb"] button:has-text("Delete")')).to_have_count(0)
    await server.stop()
    broker = server.broker
    assert isinstance(broker, strego.RedisBroker)
    seconds, _ = await broker.redis.time()  # the state a minute without a worker leaves:
    await broker.redis.hset(broker.keys("default").periodic_seen, "hb", (seconds - 61) * 1000)
    await page.goto(live_server.url + "/periodic")
    await expect(page.locator('tr[data-periodic="hb"] [data-field="state"]')).to_contain_text(
        "orphaned"
    )
    await page.locator('tr[data-periodic="hb"] button:has-text("Delete")').click()
    await expect(page.locator(".flash")).to_have_text("Periodic hb deleted.")
    await expect(page.locator("tr[data-periodic]")).to_have_count(1)
    assert [i.name for i in await inspector.periodic()] == ["reports:daily"]
