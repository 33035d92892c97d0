"""The Limits page and /api/limits: each limiter's limit, use, parked tasks and waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

import strego
from strego.testing import TEST_SERVER_DEFAULTS
from tests.conftest import wait_until
from tests.ui.conftest import conforms


@pytest.fixture
async def busy_limits(
    broker: strego.RedisBroker, client: strego.Client
) -> AsyncIterator[asyncio.Event]:
    """A worker whose keyed ConcurrencyLimit (1 per tenant) holds acme's slot, with two
    more acme tasks parked; and a queue-wide RateLimit on "default"."""
    release = asyncio.Event()
    running: list[str] = []

    async def export(payload: dict[str, str]) -> None:
        running.append(payload["tenant"])
        await release.wait()

    server = strego.Server(
        broker,
        **TEST_SERVER_DEFAULTS,
        queue_limits={"default": strego.RateLimit("ingest", 50, burst=10)},
    )
    server.handle(
        "export",
        export,
        limits=[strego.ConcurrencyLimit("exports", 1, key=lambda t: t.payload["tenant"])],
    )
    async with server:
        await client.enqueue_many([strego.Task("export", {"tenant": "acme"}) for _ in range(3)])
        await wait_until(lambda: running == ["acme"])
        inspector = strego.Inspector(broker)

        async def parked() -> bool:
            found = {lim.name: lim for lim in await inspector.limits()}
            return "exports" in found and found["exports"].parked == 2

        for _ in range(200):
            if await parked():
                break
            await asyncio.sleep(0.05)
        yield release
        release.set()


async def test_limits_api(http: httpx.AsyncClient, busy_limits: asyncio.Event) -> None:
    """/api/limits conforms to the document and reports use, parked tasks and keys."""
    data = conforms(await http.get("/api/limits"), "/api/limits")
    found = {lim["name"]: lim for lim in data["limits"]}
    exports, ingest = found["exports"], found["ingest"]
    assert (exports["kind"], exports["limit"], exports["in_use"], exports["parked"]) == (
        "concurrency",
        1,
        1,
        2,
    )
    assert exports["keys"][0]["key"] == "acme" and exports["recent_waits"]
    assert (ingest["kind"], ingest["queue"], ingest["description"]) == (
        "rate",
        "default",
        "50 per 1s, burst 10",
    )


async def test_limits_page(http: httpx.AsyncClient, busy_limits: asyncio.Event) -> None:
    """The page renders server-side: a row per limiter, a per-key table, a nav link."""
    page = await http.get("/limits")
    assert page.status_code == 200
    html = page.text
    assert 'data-limit="exports"' in html and 'data-limit="ingest"' in html
    assert 'data-key="acme"' in html and "1 at once" in html
    assert 'href="/limits"' in html


async def test_limits_page_without_limits(http: httpx.AsyncClient) -> None:
    """No limiter declared: the page says how to declare one."""
    page = await http.get("/limits")
    assert page.status_code == 200 and "No limits declared" in page.text
