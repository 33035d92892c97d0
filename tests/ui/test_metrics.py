"""The UI's /metrics: cluster-wide gauges read from Redis, against known queue states."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

import strego
from tests.conftest import wait_until
from tests.ui.conftest import ClientFactory, DeadMaker


async def _families(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def _by_labels(family: Any) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for s in family.samples}


async def _redis_ms(broker: strego.RedisBroker) -> int:
    seconds, micros = await broker.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_gauges_match_known_states(
    http: httpx.AsyncClient, broker: strego.RedisBroker, make_dead: DeadMaker
) -> None:
    """q-idle: 3 pending, 2 scheduled, 1 dead, no worker. q-busy: 2 running, 1 waiting
    behind them, 1 retrying; its oldest pending age is the waiting task's, not the
    older running ones' (they are still in the stream)."""
    await make_dead(1, queue="q-idle")
    client = strego.Client(broker)
    await client.enqueue_many([strego.Task("t", queue="q-idle") for _ in range(3)])
    await client.enqueue_many([strego.Task("t", queue="q-idle", process_in=3600) for _ in range(2)])
    release = asyncio.Event()

    async def hold(task: strego.Task) -> None:
        await release.wait()

    async def fail(task: strego.Task) -> None:
        raise RuntimeError("later")

    server = strego.Server(broker, queues=["q-busy"], concurrency=2, retry_base=600)
    server.handle("hold", hold)
    server.handle("fail", fail)
    async with server:
        await client.enqueue(strego.Task("fail", queue="q-busy"))
        inspector = strego.Inspector(broker)
        await wait_until(lambda: _count(inspector, "q-busy", "retry", 1))
        first = await client.enqueue_many([strego.Task("hold", queue="q-busy") for _ in range(2)])
        await wait_until(lambda: _count(inspector, "q-busy", "active", 2))
        started = await _redis_ms(broker)
        await wait_until(lambda: _older_than(broker, started, 300))  # the running ones age
        waiting = await client.enqueue(strego.Task("hold", queue="q-busy"))
        families = await _families(http)
        release.set()
    assert first and waiting
    tasks = _by_labels(families["strego_queue_tasks"])
    assert {k: v for k, v in tasks.items() if v} == {
        ("q-idle", "pending"): 3,
        ("q-idle", "scheduled"): 2,
        ("q-idle", "dead"): 1,
        ("q-busy", "active"): 2,
        ("q-busy", "pending"): 1,
        ("q-busy", "retry"): 1,
    }
    assert len(tasks) == 2 * 5  # every state of every known queue, zeros included
    oldest = _by_labels(families["strego_queue_oldest_pending_seconds"])
    assert 0 <= oldest[("q-busy",)] < 0.3  # the waiting task, not the running ones
    assert oldest[("q-idle",)] > 0
    assert _by_labels(families["strego_workers"]) == {(): 1}
    assert set(families) == {
        "strego_queue_tasks",
        "strego_queue_oldest_pending_seconds",
        "strego_workers",
    }


async def test_no_queue_no_series_and_auth_applies(
    broker: strego.RedisBroker, make_client: ClientFactory
) -> None:
    """An empty Redis exports strego_workers 0 only; with auth, /metrics needs it
    (Prometheus sends basic auth), unlike /healthz."""
    from strego.ui import create_app

    app = create_app(broker, auth=("prom", "secret"))
    anonymous = await make_client(app)
    assert (await anonymous.get("/metrics")).status_code == 401
    scraper = await make_client(app, auth=("prom", "secret"))
    families = await _families(scraper)
    assert _by_labels(families["strego_workers"]) == {(): 0}
    assert not families["strego_queue_tasks"].samples


async def _count(inspector: strego.Inspector, queue: str, state: str, n: int) -> bool:
    info = await inspector.queue_info(queue)
    return bool(getattr(info, state) == n)


async def _older_than(broker: strego.RedisBroker, since_ms: int, ms: int) -> bool:
    return await _redis_ms(broker) - since_ms >= ms
