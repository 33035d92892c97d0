"""Every page at 1440 px and 400 px in headless Chromium: nothing is cut off.

The page never scrolls sideways; every nav link and queue tab is on screen; a table
wider than its card scrolls inside it and says so (a faded edge, ``data-more``); chart
labels stay readable. The task pages of a flaky-then-completed task and of a dead task
are checked attempt by attempt and saved to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

import strego
from strego.store.postgres import PostgresStore
from strego.ui import create_app
from tests.conftest import wait_until
from tests.store.conftest import fresh_dsn  # noqa: F401  (a migrated database per test)
from tests.ui.conftest import LiveServer
from tests.ui.test_browser import SHOTS, Watched, browser, chromium  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

WIDTHS = (1440, 400)


class Seeded:
    """A live UI over tasks in every state, with a worker still running."""

    def __init__(self, url: str, flaky: str, dead: str) -> None:
        self.url = url
        self.flaky = flaky
        self.dead = dead


@pytest.fixture
async def seeded(
    broker: strego.RedisBroker, client: strego.Client, app: object
) -> AsyncIterator[Seeded]:
    async with _seed(broker, client, app) as found:
        yield found


@pytest.fixture
async def seeded_history(broker: strego.RedisBroker, fresh_dsn: str) -> AsyncIterator[Seeded]:
    """The same, with a history store: every attempt recorded, with its own error."""
    async with (
        PostgresStore(fresh_dsn, flush_interval=0.01) as store,
        strego.Client(broker, store=store) as client,
        _seed(broker, client, create_app(broker, store), store) as found,
    ):
        assert await store.flush(timeout=10)
        yield found


@contextlib.asynccontextmanager
async def _seed(
    broker: strego.RedisBroker,
    client: strego.Client,
    app: object,
    store: PostgresStore | None = None,
) -> AsyncIterator[Seeded]:
    server = strego.Server(
        broker,
        queues=["default", "billing"],
        retry_base=0.01,
        retry_max=0.02,
        concurrency=4,
        store=store,
    )
    calls: dict[str, int] = {}

    @server.handle("order:sync")
    async def flaky(task: strego.Task) -> None:
        calls[task.id] = calls.get(task.id, 0) + 1
        if calls[task.id] < 3:
            raise ConnectionError(f"warehouse API timed out (call {calls[task.id]})")

    @server.handle("payment:charge")
    async def doomed(task: strego.Task) -> None:
        raise ValueError(f"card declined for order 201 (attempt {task.retry_count + 1})")

    flaky_info = await client.enqueue(
        strego.Task("order:sync", {"order_id": 7}, max_retry=3, labels={"tenant": "acme"})
    )
    dead_info = await client.enqueue(
        strego.Task("payment:charge", {"order_id": 201, "amount_cents": 1999}, queue="billing",
                    max_retry=2, labels={"tenant": "globex", "region": "eu-west-1"})
    )  # fmt: skip
    await client.enqueue_many(
        [strego.Task("report:build", {"n": i, "title": "quarterly numbers " * 3},
                     queue="reports", labels={"team": "finance"}) for i in range(8)]
    )  # fmt: skip
    await client.enqueue(strego.Task("digest", {"week": 1}, queue="emails", process_in=3600))
    inspector = strego.Inspector(broker)
    async with server:
        await wait_until(lambda: _finished(inspector, flaky_info.id, dead_info.id))
        async with LiveServer(app) as live:
            yield Seeded(live.url, flaky_info.id, dead_info.id)


async def _finished(inspector: strego.Inspector, *ids: str) -> bool:
    for task_id in ids:
        record = await inspector.get_task(task_id)
        if record is None or record.state not in ("completed", "dead"):
            return False
    return True


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
async def sized(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Watched]:
    width: int = request.param
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    tab = Watched(page)
    yield tab
    await context.close()
    tab.assert_clean()


async def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    await page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


async def assert_fits(page: Page) -> None:
    """No sideways page scroll; nav links and tabs on screen; wide tables say so."""
    width = await page.evaluate("window.innerWidth")
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in (".nav a", ".tabs a", ".topbar-tools > *"):
        for box in [await el.bounding_box() for el in await page.locator(selector).all()]:
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    for wrap in await page.locator(".table-wrap").all():
        overflows = await wrap.evaluate("w => w.scrollWidth > w.clientWidth + 1")
        marked = await wrap.get_attribute("data-more")
        assert (marked == "right") == overflows, "a wide table must show its faded edge"


PAGES = {
    "dashboard": "/",
    "queues": "/queues",
    "queue-reports": "/queues/reports",
    "queue-billing-dead": "/queues/billing?state=dead",
    "dead": "/dead",
    "workers": "/workers",
}


async def test_every_page_fits(sized: Watched, seeded: Seeded) -> None:
    """Each page at this width: nothing cut off, nothing pushing the page sideways."""
    page = sized.page
    for name, path in PAGES.items():
        await page.goto(seeded.url + path)
        await expect(page.locator("h1")).to_be_visible()
        await assert_fits(page)
        await shoot(page, name)
    await page.goto(seeded.url + "/")
    label = page.locator(".chart text.axis").first
    box = await label.bounding_box()
    assert box is not None and box["height"] >= 8, "chart labels must stay readable"


async def test_task_pages_show_every_attempt(sized: Watched, seeded: Seeded) -> None:
    """Redis only: the flaky task completed on attempt 3 of 4 (no error card; attempt
    2's error on its line, attempt 1's not kept); the dead task's attempts 1-3 of 3,
    the last with the error it died of."""
    page = sized.page
    await page.goto(f"{seeded.url}/tasks/{seeded.flaky}")
    await check_flaky(page, errors={2: "warehouse API timed out (call 2)"})
    await shoot(page, "task-flaky-completed")
    await page.goto(f"{seeded.url}/tasks/{seeded.dead}")
    await check_dead(page, errors={3: "card declined for order 201 (attempt 3)"})
    await shoot(page, "task-dead")


async def test_task_pages_from_history(sized: Watched, seeded_history: Seeded) -> None:
    """With a history store every attempt has its own time, worker, duration and error."""
    page, seeded = sized.page, seeded_history
    await page.goto(f"{seeded.url}/tasks/{seeded.flaky}")
    await check_flaky(page, errors={n: f"warehouse API timed out (call {n})" for n in (1, 2)})
    await expect(page.locator(".timeline li[data-attempt] .tl-body")).to_have_count(3)
    await expect(page.locator(".timeline li[data-attempt] .tl-body").first).to_contain_text("took")
    await expect(page.locator('[data-field="duration"]')).to_contain_text("ms")  # measured
    await shoot(page, "task-flaky-completed-history")
    await page.goto(f"{seeded.url}/tasks/{seeded.dead}")
    errors = {n: f"card declined for order 201 (attempt {n})" for n in (1, 2, 3)}
    await check_dead(page, errors=errors)
    # Redis' dead record names no worker: the history store's does (host-pid-random).
    await expect(page.locator('[data-field="worker"]')).to_have_text(re.compile(r"\S+-\d+-\w+"))
    await shoot(page, "task-dead-history")


async def check_flaky(page: Page, errors: dict[int, str]) -> None:
    """Attempts 1 and 2 failed (with ``errors`` where known), 3 of 4 completed."""
    await expect(page.locator("[data-problem]")).to_have_count(0)
    await expect(page.locator('[data-field="attempts"]')).to_have_text(
        "3 of 4, completed after 2 failed"
    )
    await check_attempts(page, {1: "failed", 2: "failed", 3: "completed"}, 4, errors)
    await assert_fits(page)


async def check_dead(page: Page, errors: dict[int, str]) -> None:
    """Attempts 1-3 of 3 failed, the last one dead (exhausted) with its error."""
    await expect(page.locator('[data-problem="dead"] h2')).to_have_text("Why it died")
    await expect(page.locator('[data-field="attempts"]')).to_have_text("3 of 3")
    await check_attempts(page, {1: "failed", 2: "failed", 3: "dead"}, 3, errors)
    await expect(page.locator(".timeline li[data-attempt='3']")).to_contain_text("exhausted")
    await assert_fits(page)


async def check_attempts(
    page: Page, outcomes: dict[int, str], most: int, errors: dict[int, str]
) -> None:
    """One line per attempt, in order, each with its outcome and only its own error."""
    lines = page.locator(".timeline li[data-attempt]")
    await expect(lines).to_have_count(len(outcomes))
    for n, outcome in outcomes.items():
        line = page.locator(f".timeline li[data-attempt='{n}']")
        await expect(line).to_have_attribute("data-tl", outcome)
        await expect(line.locator(".tl-attempt")).to_have_text(f"Attempt {n} of {most}")
        own = line.locator('[data-field="attempt-error"]')
        if n in errors:
            await expect(own).to_have_text(f"{'ConnectionError' if most == 4 else 'ValueError'}: "
                                           f"{errors[n]}")  # fmt: skip
        else:
            await expect(own).to_have_count(0)


async def test_narrow_table_scrolls_and_the_edge_moves(browser: Browser, seeded: Seeded) -> None:
    """At 400 px a wide task table scrolls inside its card: the faded edge follows."""
    context = await browser.new_context(viewport={"width": 400, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(seeded.url + "/queues/reports")
        wrap = page.locator(".table-wrap").first
        await expect(wrap).to_have_attribute("data-more", "right")
        await wrap.evaluate("w => { w.scrollLeft = w.scrollWidth; }")
        await expect(wrap).to_have_attribute("data-more", "left")
    finally:
        await context.close()
