"""The task page's result card in headless Chromium: visible, coloured, inert."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

import strego
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401  (fixture)
from tests.ui.conftest import XSS, LiveServer
from tests.ui.test_browser import Watched, browser, chromium, shoot, watched  # noqa: F401

pytestmark = pytest.mark.browser


async def test_result_card_in_the_browser(
    watched: Watched,
    live_server: LiveServer,
    client: strego.Client,
    make_server: ServerFactory,
) -> None:
    """A completed task shows its result, pretty-printed; markup in it never runs."""

    async def answer(payload: Any) -> dict[str, Any]:
        return {"rows": 3, "html": XSS}

    await make_server({"answer": answer})
    info = await client.enqueue(strego.Task("answer"))
    await client.result(info.id, timeout=10)
    page = watched.page
    await page.goto(f"{live_server.url}/tasks/{info.id}")
    card = page.locator('[data-section="result"]')
    await expect(card).to_be_visible()
    await expect(card.locator('[data-field="result"] .j-num')).to_have_text("3")
    await expect(card.locator('[data-field="result"]')).to_contain_text(XSS)
    await shoot(page, "task-result")
