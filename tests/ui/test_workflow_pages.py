"""The workflow page: the graph as server-rendered SVG with states and links, the
workflow on each member's task page, cancel from the UI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

import strego
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401  (fixture)
from tests.ui.conftest import XSS, LiveServer, csrf_of
from tests.ui.test_browser import Watched, browser, chromium, shoot, watched  # noqa: F401


async def dead_chord(client: strego.Client, make_server: ServerFactory) -> strego.WorkflowInfo:
    async def member(payload: Any) -> Any:
        return payload

    async def broken(payload: Any) -> None:
        raise strego.SkipRetry("no")

    async def collect(task: strego.Task) -> list[Any]:
        return task.upstream_results

    await make_server({"member": member, "broken": broken, "collect": collect})
    flow = strego.chain(
        strego.chord(
            [strego.Task("member", 1), strego.Task("broken"), strego.Task(XSS)],
            strego.Task("collect"),
        ),
        strego.Task("member", 2),
    )
    info = await client.enqueue(flow)
    with pytest.raises(strego.TaskCancelledError):
        await client.result(info.id, timeout=20)
    return info


async def test_workflow_page_server_side(
    http: httpx.AsyncClient, client: strego.Client, make_server: ServerFactory
) -> None:
    """The page holds an inline SVG with one linked box per task and its state; the
    member's task page links back; unknown workflows are 404; no external asset."""
    info = await dead_chord(client, make_server)
    page = await http.get(f"/workflows/{info.id}")
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and "http://" not in html.split("<svg", 1)[1].split("</svg>")[0]
    for task_id in info.task_ids:
        assert f'data-task="{task_id}"' in html
    assert 'data-state="dead"' in html and 'data-state="completed"' in html
    assert html.count('data-state="cancelled"') == 2
    assert XSS not in html  # escaped
    member = await http.get(f"/tasks/{info.task_ids[0]}")
    assert f'href="/workflows/{info.id}"' in member.text
    assert (await http.get("/workflows/wf_nope")).status_code == 404


async def test_cancel_from_the_ui(
    http: httpx.AsyncClient, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Cancel workflow (a CSRF-protected form) cancels every unfinished task."""
    info = await client.enqueue(strego.chain(strego.Task("a"), strego.Task("b")))
    page = await http.get(f"/workflows/{info.id}")
    response = await http.post(
        f"/workflows/{info.id}/cancel", data={"csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303
    view = await inspector.workflow(info.id)
    assert view is not None and view.state == "cancelled"


@pytest.mark.browser
async def test_workflow_graph_in_the_browser(
    watched: Watched,
    live_server: LiveServer,
    client: strego.Client,
    make_server: ServerFactory,
) -> None:
    """Chromium draws the graph: a box per task coloured by state; clicking a box opens
    the task page, which links back to the workflow."""
    info = await dead_chord(client, make_server)
    page = watched.page
    await page.goto(f"{live_server.url}/workflows/{info.id}")
    graph = page.locator("svg.wf-graph")
    await expect(graph).to_be_visible()
    await expect(graph.locator("a.wf-node")).to_have_count(len(info.task_ids))
    await expect(graph.locator('a.wf-node[data-state="dead"]')).to_have_count(1)
    await expect(graph.locator("path")).to_have_count(4)  # 3 into the callback, 1 out
    box = await graph.locator(f'a[data-task="{info.task_ids[0]}"] rect').bounding_box()
    assert box is not None and box["width"] > 100
    await shoot(page, "workflow-graph")
    await graph.locator(f'a[data-task="{info.task_ids[1]}"]').click()
    await expect(page.locator('[data-field="workflow"] a')).to_have_text(info.id)
    await page.locator('[data-field="workflow"] a').click()
    await expect(page.locator("svg.wf-graph")).to_be_visible()
