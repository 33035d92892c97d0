"""Every HTML page against real Redis: data rendered server-side on first load."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

import strego
from strego.ui import create_app
from tests.conftest import wait_until
from tests.ui.conftest import ClientFactory, DeadMaker, csrf_of


def rows(page: str, table: str) -> list[str]:
    """The data-task-id values of one rendered task table."""
    assert f'data-table="{table}"' in page
    return re.findall(r'<tr data-task-id="([^"]+)"', page)


def stat(page: str, name: str) -> int:
    match = re.search(rf'data-stat="{name}">.*?tile-value">([\d,]+)<', page, re.S)
    assert match, f"no {name} tile"
    return int(match.group(1).replace(",", ""))


@pytest.fixture
async def worker(broker: strego.RedisBroker) -> AsyncIterator[strego.Server]:
    """A server on queues default+emails whose 'block' tasks run until released."""
    release = asyncio.Event()
    server = strego.Server(
        broker, queues=["default", "emails"], concurrency=4, retry_base=3600, retry_max=3600
    )

    @server.handle("block")
    async def block(task: strego.Task) -> None:
        await release.wait()

    @server.handle("ok")
    async def ok(task: strego.Task) -> None:
        return None

    @server.handle("fail")
    async def fail(task: strego.Task) -> None:
        raise RuntimeError("transient failure")

    await server.start()
    yield server
    release.set()
    await server.stop()


async def test_dashboard_renders_counts_server_side(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """The first HTML response already holds totals, per-queue counts and Redis info."""
    await client.enqueue_many([strego.Task("t", {"i": i}) for i in range(3)])
    await client.enqueue_many([strego.Task("t", queue="emails") for _ in range(2)])
    await client.enqueue(strego.Task("t", queue="emails", process_in=600))
    response = await http.get("/")
    assert response.status_code == 200
    page = response.text
    assert stat(page, "pending") == 5
    assert stat(page, "scheduled") == 1
    assert re.search(r'data-queue="emails">.*?data-count="pending">2<', page, re.S)
    assert "Redis" in page and "redis_version" not in page
    assert 'hx-trigger="every 2000ms"' in page
    assert "<svg" in page and 'class="chart chart-processed"' in page


async def test_dashboard_charts_show_processed_and_failed(
    http: httpx.AsyncClient,
    client: strego.Client,
    worker: strego.Server,
    inspector: strego.Inspector,
) -> None:
    """Throughput charts (1 h and 24 h) count what workers did in the last minute."""
    await client.enqueue_many([strego.Task("ok") for _ in range(4)])
    await client.enqueue(strego.Task("fail", max_retry=0))
    await wait_until(lambda: _processed(inspector, 4, 1))
    for query in ("", "?range=24h"):
        page = (await http.get("/" + query)).text
        totals = re.findall(r'class="chart-total">([\d,]+)<', page)
        assert totals == ["4", "1"], query
    assert page.count('class="bar-slot"') == 2 * 96  # 24 h in 15-minute bars


async def _processed(inspector: strego.Inspector, processed: int, failed: int) -> bool:
    points = await inspector.throughput(minutes=2)
    return (sum(p.processed for p in points), sum(p.failed for p in points)) == (
        processed,
        failed,
    )


async def test_fragment_request_returns_only_the_live_part(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """htmx polling (HX-Request) gets the fragment, not a whole document."""
    await client.enqueue(strego.Task("t"))
    for path in ("/", "/queues", "/queues/default", "/workers", "/dead"):
        response = await http.get(path, headers={"HX-Request": "true"})
        assert response.status_code == 200, path
        assert "<html" not in response.text and "<body" not in response.text, path
        assert response.headers["vary"] == "HX-Request"
    assert 'data-stat="pending"' in (await http.get("/", headers={"HX-Request": "true"})).text


async def test_queue_tabs_list_each_state(
    http: httpx.AsyncClient,
    client: strego.Client,
    worker: strego.Server,
    inspector: strego.Inspector,
    make_dead: DeadMaker,
) -> None:
    """Pending, active, scheduled, retry, dead and completed tabs each show their tasks."""
    done = await client.enqueue(strego.Task("ok"))
    active = await client.enqueue(strego.Task("block"))
    retry = await client.enqueue(strego.Task("fail", max_retry=5))
    await wait_until(lambda: _counts(inspector, active=1, retry=1, completed=1))
    [dead] = await make_dead(1, queue="billing")
    await inspector.pause("default")
    await asyncio.sleep(1.2)  # workers notice a pause within a second
    pending = await client.enqueue(strego.Task("ok", {"who": "pending"}))
    scheduled = await client.enqueue(strego.Task("ok", process_in=3600))
    expected = {
        "pending": pending.id,
        "active": active.id,
        "scheduled": scheduled.id,
        "retry": retry.id,
        "completed": done.id,
    }
    for state, task_id in expected.items():
        page = (await http.get(f"/queues/default?state={state}")).text
        assert rows(page, "tasks") == [task_id], state
    page = (await http.get("/queues/billing?state=dead")).text
    assert rows(page, "tasks") == [dead]
    assert "transient failure" in (await http.get("/queues/default?state=retry")).text
    assert "paused" in (await http.get("/queues/default")).text


async def _counts(inspector: strego.Inspector, **wanted: int) -> bool:
    info = await inspector.queue_info("default")
    return all(getattr(info, k) == v for k, v in wanted.items())


async def test_queue_pagination(http: httpx.AsyncClient, client: strego.Client) -> None:
    """25 rows per page; the pager's cursor links lead to the rest and to the last page."""
    infos = await client.enqueue_many([strego.Task("t", {"i": i}) for i in range(30)])
    first = (await http.get("/queues/default")).text
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link and "cursor=a0." in next_link[1]
    second = (await http.get(html.unescape(next_link[1]))).text
    assert len(rows(first, "tasks")) == 25
    assert len(rows(second, "tasks")) == 5
    ids = rows(first, "tasks") + rows(second, "tasks")
    assert ids == [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    assert (
        "25 shown of 30" in first
        and 'href="/queues/default?state=pending&amp;cursor=last"' in first
    )
    last = (await http.get("/queues/default?state=pending&cursor=last")).text
    assert rows(last, "tasks") == ids[5:]
    assert (await http.get("/queues/default?cursor=garbage")).status_code == 200  # first page


async def test_task_detail_shows_payload_options_error(
    http: httpx.AsyncClient, make_dead: DeadMaker
) -> None:
    """The task page pretty-prints the JSON payload, labels, the error and traceback."""
    [task_id] = await make_dead(
        1, error="card declined", labels={"tenant": "acme"}, payload={"amount": 42}
    )
    page = (await http.get(f"/tasks/{task_id}")).text
    assert '<span class="j-key">&#34;amount&#34;</span>' in page
    assert '<span class="j-num">42</span>' in page
    assert "card declined" in page and "Traceback" in page
    assert 'chip-key">tenant</span>acme' in page
    assert "Run now" in page and "Delete" in page
    assert "created" in page  # the Redis-only timeline


async def test_binary_payload_is_shown_as_hex(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """A non-UTF-8 payload renders as a hex dump, never as raw bytes."""
    info = await client.enqueue(
        strego.Task("bin", b"\x00\xff<b>\x80", serializer=strego.RawSerializer())
    )
    page = (await http.get(f"/tasks/{info.id}")).text
    assert "binary, shown as hex" in page
    assert "00 ff 3c 62 3e 80" in page and "..&lt;b&gt;." in page


async def test_unknown_task_queue_and_state(http: httpx.AsyncClient, client: strego.Client) -> None:
    """Unknown tasks and queues are 404 pages; a bad state is a 400, never a 500."""
    await client.enqueue(strego.Task("t"))
    missing = await http.get("/tasks/nope")
    assert missing.status_code == 404 and "not found" in missing.text
    assert "<html" in missing.text
    assert (await http.get("/queues/nope")).status_code == 404
    assert (await http.get("/queues/default?state=bogus")).status_code == 400


async def test_dead_letters_page(
    http: httpx.AsyncClient, make_dead: DeadMaker, client: strego.Client
) -> None:
    """Dead letters are grouped per queue with their reason and error."""
    ids = await make_dead(2, queue="billing", error="insufficient funds")
    await client.enqueue(strego.Task("t", queue="other"))
    page = (await http.get("/dead")).text
    assert sorted(rows(page, "tasks")) == sorted(ids)
    assert "insufficient funds" in page and ">skip_retry</div>" in page
    assert "Retry all" in page and "Purge" in page
    other = (await http.get("/dead?queue=other")).text
    assert "No dead tasks in other." in other


async def test_workers_page(
    http: httpx.AsyncClient,
    worker: strego.Server,
    client: strego.Client,
    inspector: strego.Inspector,
) -> None:
    """Live servers show host, pid, queues and slots; each queue lists its consumers."""
    await client.enqueue(strego.Task("ok"))
    await wait_until(lambda: _has_consumer(inspector))
    page = (await http.get("/workers")).text
    [info] = await inspector.workers()
    assert f'data-worker="{html.escape(info.name)}"' in page
    assert f">{info.pid}<" in page
    assert "/ 4<" in page
    assert f'data-consumer="{html.escape(info.name)}"' in page and ">alive<" in page


async def _has_consumer(inspector: strego.Inspector) -> bool:
    return bool(await inspector.consumers("default"))


async def test_names_with_slashes_round_trip(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """Queue names and task ids holding '/' or '~' get working links."""
    info = await client.enqueue(strego.Task("t", id="order/42~x", queue="team/a"))
    page = (await http.get("/queues")).text
    assert 'href="/queues/team~2Fa"' in page
    queue_page = (await http.get("/queues/team~2Fa")).text
    assert rows(queue_page, "tasks") == ["order/42~x"]
    assert 'href="/tasks/order~2F42~7Ex?queue=team%2Fa"' in queue_page
    detail = await http.get("/tasks/order~2F42~7Ex?queue=team%2Fa")
    assert detail.status_code == 200 and info.id in detail.text


async def test_mounted_under_a_prefix(
    broker: strego.RedisBroker, client: strego.Client, make_client: ClientFactory
) -> None:
    """Mounted in FastAPI at /admin/strego, every link, asset and redirect keeps the prefix."""
    outer = FastAPI()
    outer.mount("/admin/strego", create_app(broker))
    http = await make_client(outer)
    info = await client.enqueue(strego.Task("t"))
    page = (await http.get("/admin/strego/")).text
    hrefs = re.findall(r'(?:href|src|action|hx-get)="([^"]+)"', page)
    assert hrefs and all(h.startswith("/admin/strego/") for h in hrefs), hrefs
    assert (await http.get("/admin/strego/static/htmx.min.js")).status_code == 200
    queue_page = (await http.get("/admin/strego/queues/default")).text
    assert f'href="/admin/strego/tasks/{info.id}?queue=default"' in queue_page
    signed = csrf_of(queue_page)
    response = await http.post(
        "/admin/strego/queues/default/actions/pause", data={"csrf_token": signed}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/strego/queues/default"
    assert (
        "set-cookie" in response.headers and "Path=/admin/strego/" in response.headers["set-cookie"]
    )
    assert (await strego.Inspector(broker).queue_info("default")).paused
    api = (await http.get("/admin/strego/api/openapi.json")).json()
    assert api["servers"] == [{"url": "/admin/strego"}]
