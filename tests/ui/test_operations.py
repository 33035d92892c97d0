"""What an operator needs beyond the listings: unserved-queue warnings, deleting a queue,
finding a task by id, per-worker and per-type numbers, and /healthz."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

import strego
from strego.records import DURATION_BOUNDS_MS, TaskTypeStats
from strego.ui import create_app
from tests.conftest import wait_until
from tests.support.servers import start_redis
from tests.ui.conftest import ClientFactory, conforms, post_api, post_form


@pytest.fixture
async def worker(broker: strego.RedisBroker) -> AsyncIterator[strego.Server]:
    """A live worker reading "default" only (its own consumer name)."""
    own = strego.RedisBroker(broker.redis, prefix=broker.config.prefix, group=broker.group)
    server = strego.Server(own, queues=["default"])
    server.handle("t", lambda task: None)
    async with server:
        inspector = strego.Inspector(broker)
        await wait_until(lambda: _workers(inspector))
        yield server


async def _workers(inspector: strego.Inspector) -> bool:
    return bool(await inspector.workers())


async def test_a_queue_nobody_reads_is_flagged(
    http: httpx.AsyncClient, client: strego.Client, worker: strego.Server
) -> None:
    """The queue page and the queue tables warn about a queue no live worker reads."""
    await client.enqueue_many([strego.Task("t", queue="defualt") for _ in range(3)])
    page = (await http.get("/queues/defualt")).text
    assert 'data-warning="unserved"' in page and "No consumer reads this queue." in page
    assert "its 3 waiting tasks wait for nobody" in page
    served = (await http.get("/queues/default")).text
    assert 'data-warning="unserved"' not in served and 'data-readers="1"' in served
    for path in ("/queues", "/"):
        listing = (await http.get(path)).text
        flagged = re.findall(
            r'<tr data-queue="([^"]+)">(?:(?!</tr>).)*data-unserved', listing, re.S
        )
        assert flagged == ["defualt"], path


async def test_delete_a_typo_queue_from_the_ui_and_the_api(
    http: httpx.AsyncClient, client: strego.Client, worker: strego.Server
) -> None:
    """Delete removes an unserved queue (flash, then gone); a served one is refused."""
    await client.enqueue_many([strego.Task("t", queue="defualt") for _ in range(2)])
    await client.enqueue(strego.Task("t", queue="emials"))
    await http.get("/")
    response = await post_form(http, "/queues/defualt/actions/delete")
    assert response.status_code == 303 and response.headers["location"] == "/queues"
    assert "Queue defualt deleted with its 2 tasks." in (await http.get("/queues")).text
    assert (await http.get("/queues/defualt")).status_code == 404
    refused = await post_form(http, "/queues/default/actions/delete")
    assert refused.headers["location"] == "/queues/default"
    page = (await http.get("/queues/default")).text
    assert "Not deleted: queue &#39;default&#39; is in use: served by live workers" in page
    assert conforms(
        await post_api(http, "/api/queues/emials/delete"), "/api/queues/{queue}/delete", "POST"
    ) == {"queue": "emials", "action": "delete", "count": 1}
    conflict = await post_api(http, "/api/queues/default/delete")
    assert conflict.status_code == 409
    assert (
        "served by live workers"
        in conforms(conflict, "/api/queues/{queue}/delete", "POST")["error"]
    )


async def test_find_a_task_by_id_without_a_history_store(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """The top bar's search box opens any task Redis knows, in whatever queue."""
    info = await client.enqueue(strego.Task("t", queue="reports/eu", process_in=60))
    page = (await http.get("/")).text
    assert 'role="search"' in page and 'name="id"' in page
    found = await http.get("/find", params={"id": f"  {info.id} "})
    assert found.status_code == 303
    task = await http.get(found.headers["location"])
    assert task.status_code == 200 and info.id in task.text and "reports/eu" in task.text
    missing = await http.get((await http.get("/find?id=nope")).headers["location"])
    assert missing.status_code == 404 and "not found in any queue" in missing.text
    assert (await http.get("/find?id=")).headers["location"] == "/"


def test_type_stats_add_and_give_percentiles() -> None:
    """Histograms of two workers add bucket by bucket; percentiles are bucket bounds."""
    size = len(DURATION_BOUNDS_MS) + 1
    fast = TaskTypeStats(queue="q", type="t", processed=90, failed=0, buckets=(0, 0, 90))
    slow = TaskTypeStats(queue="q", type="t", processed=8, failed=2, buckets=(0,) * 9 + (10,))
    both = fast + slow
    assert (both.processed, both.failed, len(both.buckets)) == (98, 2, 10)
    assert both.percentile_ms(0.5) == 5 and both.percentile_ms(0.95) == 1000
    overflow = TaskTypeStats(queue="q", type="t", processed=1, failed=0, buckets=(0,) * 15 + (1,))
    assert (
        overflow.percentile_ms(0.5) == DURATION_BOUNDS_MS[-1] + 1 and len(overflow.buckets) == size
    )
    assert TaskTypeStats(queue="q", type="t", processed=0, failed=0).percentile_ms(0.5) is None


async def test_workers_and_task_types_show_what_workers_publish(
    http: httpx.AsyncClient, broker: strego.RedisBroker, worker: strego.Server
) -> None:
    """Per-worker processed/failed/uptime and per-type p50/p95, from the heartbeat fields
    (written here as a worker publishes them: processed, failed, types)."""
    key = broker.global_keys.worker(worker.broker.consumer)
    types = [
        {"queue": "default", "type": "email:send", "processed": 40, "failed": 2,
         "buckets": [0, 0, 30, 10, 2]},
        {"queue": "other", "type": "elsewhere", "processed": 1, "failed": 0, "buckets": [1]},
        {"queue": "default", "processed": "x"},  # unreadable: skipped, never fatal
    ]  # fmt: skip
    await broker.redis.hset(key, mapping={"processed": 41, "failed": 2, "types": json.dumps(types)})
    page = (await http.get("/workers")).text
    row = re.search(rf'<tr data-worker="{re.escape(worker.broker.consumer)}">.*?</tr>', page, re.S)
    assert row is not None
    assert re.search(r'data-field="processed">41<', row.group(0))
    assert re.search(r'data-field="failed">2<', row.group(0))
    assert 'data-field="uptime"' in row.group(0)
    queue = (await http.get("/queues/default")).text
    rows = re.findall(r'<tr data-type="([^"]+)">(.*?)</tr>', queue, re.S)
    assert [name for name, _ in rows] == ["email:send"]
    cells = re.findall(r'<td class="num">([^<]*)</td>', rows[0][1])
    assert cells == ["40", "2", "≤ 5 ms", "≤ 10 ms"]
    data = conforms(await http.get("/api/workers"), "/api/workers")["workers"][0]
    assert (data["processed"], data["failed"]) == (41, 2)
    assert [(t["type"], t["p50_ms"], t["p95_ms"]) for t in data["task_types"]] == [
        ("email:send", 5, 10),
        ("elsewhere", 1, 1),
    ]


async def test_healthz_says_whether_redis_answers(make_client: ClientFactory) -> None:
    """/healthz: 200 while Redis answers, 503 (quickly, with the reason) when it does not;
    open without credentials even when the UI requires them."""
    redis = start_redis()
    try:
        async with strego.RedisBroker(redis.url, group="tests") as broker:
            http = await make_client(create_app(broker, auth=("admin", "secret")))
            up = await http.get("/healthz")
            assert up.status_code == 200 and up.json()["status"] == "ok"
            assert (await http.get("/")).status_code == 401  # the rest stays protected
            redis.stop(kill=True)
            down = await http.get("/healthz")
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable" and down.json()["redis"]
    finally:
        redis.cleanup()
