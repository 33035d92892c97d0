"""The UI in headless Chromium (Debian's, driven by Playwright): live refresh, actions,
escaping, history search; screenshots land in artifacts/screenshots/.

Skipped when /usr/bin/chromium is missing, except under CI=true, where that fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

import strego
from strego.store.postgres import PostgresStore
from strego.ui import create_app
from tests.store.conftest import fresh_dsn  # noqa: F401  (a migrated database per test)
from tests.support.servers import start_redis
from tests.ui.conftest import XSS, DeadMaker, LiveServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; missing means skip, except under CI=true (then fail)."""
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true: browser tests must run, not skip")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield launched
        await launched.close()


class Watched:
    """A page plus what it reported: alert dialogs (XSS) and console errors (CSP)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.alerts: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def _dialog(self, dialog: Dialog) -> None:
        if dialog.type == "confirm":
            await dialog.accept()  # destructive actions ask; the tests mean it
            return
        self.alerts.append(dialog.message)
        await dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def assert_clean(self) -> None:
        assert self.alerts == [], f"a script ran: {self.alerts}"
        assert self.errors == [], f"console errors: {self.errors}"


@pytest.fixture
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    tab = Watched(page)
    yield tab
    await context.close()
    tab.assert_clean()


async def shoot(page: Page, name: str, scheme: str = "light") -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await page.screenshot(path=str(SHOTS / f"{name}-{scheme}.png"), full_page=True)


async def test_dashboard_counts_change_live(
    watched: Watched, live_server: LiveServer, client: strego.Client
) -> None:
    """With the dashboard open, enqueued tasks appear without a reload; pause stops that."""
    page = watched.page
    await client.enqueue_many([strego.Task("t") for _ in range(2)])
    await page.goto(live_server.url + "/")
    pending = page.locator('[data-stat="pending"] .tile-value')
    await expect(pending).to_have_text("2")
    await client.enqueue_many([strego.Task("t", queue="emails") for _ in range(3)])
    await expect(pending).to_have_text("5", timeout=6000)
    await expect(page.locator('tr[data-queue="emails"]')).to_be_visible()
    await shoot(page, "dashboard")
    await shoot(page, "dashboard", "dark")
    await page.click("#live-toggle")
    await expect(page.locator("#live-toggle")).to_have_text("Paused")
    await client.enqueue(strego.Task("t"))
    await page.wait_for_timeout(3000)
    await expect(pending).to_have_text("5")
    await page.click("#live-toggle")
    await expect(pending).to_have_text("6", timeout=6000)


async def test_retry_a_dead_task(
    watched: Watched, live_server: LiveServer, make_dead: DeadMaker
) -> None:
    """Open a dead task from the dead letters, click Run now, and it leaves the list."""
    page = watched.page
    [task_id] = await make_dead(1, error="card declined")
    await page.goto(live_server.url + "/dead")
    row = page.locator(f'tr[data-task-id="{task_id}"]')
    await expect(row).to_contain_text("card declined")
    await shoot(page, "dead-letters")
    await row.locator("a.strong").click()
    await expect(page.locator("h1")).to_contain_text("dead")
    await shoot(page, "task-dead")
    await shoot(page, "task-dead", "dark")
    await page.click('button[data-action="retry"]')
    await expect(page.locator(".flash")).to_have_text(f"Task {task_id} queued to run now.")
    await expect(page.locator("h1 .badge").first).to_have_text("pending")
    await page.goto(live_server.url + "/dead")
    await expect(page.locator(f'tr[data-task-id="{task_id}"]')).to_have_count(0)
    await expect(page.locator(".empty")).to_contain_text("No dead tasks in default.")


async def test_bulk_delete_a_selection(
    watched: Watched, live_server: LiveServer, client: strego.Client
) -> None:
    """Select all, confirm Delete: the rows are gone and the count says so."""
    page = watched.page
    await client.enqueue_many([strego.Task("t", {"i": i}) for i in range(3)])
    await page.goto(live_server.url + "/queues/default")
    delete = page.locator('button[data-bulk][value="delete"]')
    await expect(delete).to_be_disabled()
    await page.check("[data-select-all]")
    await expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    await shoot(page, "queue-selection")
    await delete.click()
    await expect(page.locator(".flash")).to_have_text("3 of 3 selected tasks deleted.")
    await expect(page.locator("tr[data-task-id]")).to_have_count(0)


async def test_markup_in_user_data_stays_inert(
    watched: Watched, live_server: LiveServer, make_dead: DeadMaker, client: strego.Client
) -> None:
    """Script tags in payloads, labels, errors and types show as text and never run."""
    page = watched.page
    [task_id] = await make_dead(
        1, error=XSS, labels={"note": XSS}, payload={"html": XSS}, task_type=f"x{XSS}"
    )
    await client.enqueue(strego.Task("raw", XSS.encode(), serializer=strego.RawSerializer()))
    for path in ("/", "/queues/default", "/queues/default?state=dead", "/dead",
                 f"/tasks/{task_id}"):  # fmt: skip
        await page.goto(live_server.url + path)
        await page.wait_for_timeout(300)
    await expect(page.locator('[data-field="last_error"]')).to_have_text(XSS)
    await expect(page.locator('[data-field="labels"]')).to_contain_text(XSS)
    await expect(page.locator('[data-field="payload"]')).to_contain_text(XSS)
    await expect(page.locator("h1")).to_contain_text(f"x{XSS}")
    assert await page.locator("script:not([src])").count() == 0
    await shoot(page, "task-xss")


@pytest.mark.postgres
async def test_search_history(
    watched: Watched,
    broker: strego.RedisBroker,
    fresh_dsn: str,
    make_dead: DeadMaker,
) -> None:
    """Filter the history by state from the search form and open a result."""
    async with PostgresStore(fresh_dsn, flush_interval=0.01) as store:
        async with strego.Client(broker, store=store) as client:
            await client.enqueue_many([strego.Task("email:send", {"i": i}) for i in range(4)])
            info = await client.enqueue(strego.Task("report", queue="reports", process_in=600))
        assert await store.flush(timeout=10)
        async with LiveServer(create_app(broker, store)) as server:
            page = watched.page
            await page.goto(server.url + "/history")
            await expect(page.locator("tr[data-task-id]")).to_have_count(5)
            await page.select_option('select[name="state"]', "scheduled")
            await page.click('button[type="submit"]:has-text("Search")')
            await expect(page.locator("tr[data-task-id]")).to_have_count(1)
            url = f"{server.url}/history?state=scheduled&sort=created_at&order=desc"
            await expect(page).to_have_url(url)  # empty filters stay out of the URL
            await shoot(page, "history")
            await shoot(page, "history", "dark")
            await page.click(f'tr[data-task-id="{info.id}"] a.strong')
            await expect(page.locator("h1")).to_contain_text("report")
            await expect(page.locator(".timeline")).to_contain_text("scheduled")


async def test_screenshots_of_every_page(
    watched: Watched, live_server: LiveServer, client: strego.Client, make_dead: DeadMaker
) -> None:
    """Every page renders in light and dark mode without console errors (saved as PNGs)."""
    page = watched.page
    await make_dead(2, queue="billing", error="insufficient funds")
    await client.enqueue_many([strego.Task("report:build", {"n": i}, priority=i % 3)
                               for i in range(30)])  # fmt: skip
    await client.enqueue(strego.Task("digest", {"week": 1}, queue="emails", process_in=3600))
    pages = {
        "queues": "/queues",
        "queue": "/queues/default",
        "queue-scheduled": "/queues/emails?state=scheduled",
        "workers": "/workers",
        "dashboard-24h": "/?range=24h",
    }
    for name, path in pages.items():
        await page.goto(live_server.url + path)
        await expect(page.locator("h1")).to_be_visible()
        for scheme in ("light", "dark"):
            await shoot(page, name, scheme)
    assert (SHOTS / "queue-dark.png").stat().st_size > 10_000


async def test_redis_outage_shows_offline_then_recovers(watched: Watched) -> None:
    """When Redis goes away the dashboard keeps its numbers and says Offline; then Live."""
    redis = start_redis()
    try:
        async with strego.RedisBroker(redis.url, group="tests") as broker:
            await strego.Client(broker).enqueue(strego.Task("t"))
            async with LiveServer(create_app(broker)) as server:
                page = watched.page
                await page.goto(server.url + "/")
                toggle = page.locator("#live-toggle")
                await expect(toggle).to_have_text("Live")
                redis.stop(kill=True)
                await expect(toggle).to_have_text("Offline", timeout=15_000)
                await expect(page.locator('[data-stat="pending"] .tile-value')).to_have_text("1")
                await shoot(page, "dashboard-offline")
                redis.start()
                await expect(toggle).to_have_text("Live", timeout=15_000)
    finally:
        redis.cleanup()
    # The failed refreshes were logged by the browser as 503s: expected here.
    watched.errors = [e for e in watched.errors if "503" not in e]
