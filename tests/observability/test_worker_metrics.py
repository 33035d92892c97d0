"""A real worker process' /metrics and /healthz, and the numbers its heartbeat publishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

import strego
from strego.records import TaskTypeStats
from tests.conftest import wait_until
from tests.observability.conftest import WorkerProcess, samples, scrape, value

SPEC_SERIES = {
    "strego_tasks",  # exposed as strego_tasks_total (a counter)
    "strego_task_duration_seconds",
    "strego_task_wait_seconds",
    "strego_tasks_running",
}


async def _enqueue_known_outcomes(broker: strego.RedisBroker) -> None:
    """3 completed (ok on two queues, flaky at last), 2 retried (flaky), 1 dead (boom)."""
    async with strego.Client(broker) as client:
        await client.enqueue(strego.Task("ok"))
        await client.enqueue(strego.Task("ok", queue="other"))
        await client.enqueue(strego.Task("flaky", max_retry=3))
        await client.enqueue(strego.Task("boom", max_retry=0))


async def test_scrape_after_known_outcomes(
    start_worker: Callable[..., WorkerProcess],
    http: httpx.AsyncClient,
    redis_url: str,
    prefix: str,
) -> None:
    worker = start_worker()
    await worker.wait_healthy()
    broker = strego.RedisBroker(redis_url, prefix=prefix)
    try:
        await _enqueue_known_outcomes(broker)
        url = worker.url("/metrics")

        async def settled() -> bool:
            tasks = (await scrape(http, url))["strego_tasks"]
            return sum(samples(tasks).values()) == 6

        await wait_until(settled, timeout=20)
        families = await scrape(http, url)
        assert set(families) == SPEC_SERIES
        _check_counters(families["strego_tasks"])
        _check_histograms(families)
        running = samples(families["strego_tasks_running"])
        assert running == {
            ("strego_tasks_running", (("queue", "default"),)): 0.0,
            ("strego_tasks_running", (("queue", "other"),)): 0.0,
        }
        await _check_heartbeat(strego.Inspector(broker))
        await _check_endpoints(http, worker)
    finally:
        await broker.aclose()
    assert worker.stop() == 0, worker.output()


def _check_counters(tasks: Any) -> None:
    """Exactly the outcomes that happened, by queue, type and outcome; zeros for the
    outcomes a seen (queue, type) has not had, so rates start from 0."""
    nonzero = {k: v for k, v in samples(tasks, "strego_tasks_total").items() if v}
    key = "strego_tasks_total"
    assert nonzero == {
        (key, (("outcome", "completed"), ("queue", "default"), ("type", "ok"))): 1.0,
        (key, (("outcome", "completed"), ("queue", "other"), ("type", "ok"))): 1.0,
        (key, (("outcome", "completed"), ("queue", "default"), ("type", "flaky"))): 1.0,
        (key, (("outcome", "retried"), ("queue", "default"), ("type", "flaky"))): 2.0,
        (key, (("outcome", "dead"), ("queue", "default"), ("type", "boom"))): 1.0,
    }
    by_outcome: dict[str, float] = {}
    for sample in tasks.samples:
        outcome = sample.labels["outcome"]
        by_outcome[outcome] = by_outcome.get(outcome, 0) + sample.value
    assert by_outcome == {"completed": 3, "retried": 2, "dead": 1, "cancelled": 0}


def _check_histograms(families: dict[str, Any]) -> None:
    durations, waits = (
        families["strego_task_duration_seconds"],
        families["strego_task_wait_seconds"],
    )
    count = "strego_task_duration_seconds_count"
    assert value(durations, count, queue="default", type="flaky") == 3  # every attempt
    assert value(durations, count, queue="default", type="boom") == 1
    assert value(durations, count, queue="other", type="ok") == 1
    inf = value(
        durations, "strego_task_duration_seconds_bucket", queue="default", type="flaky", le="+Inf"
    )
    assert inf == 3
    no_op = value(
        durations, "strego_task_duration_seconds_bucket", queue="other", type="ok", le="0.1"
    )
    assert no_op == 1  # a no-op handler runs well under 100 ms
    assert value(waits, "strego_task_wait_seconds_count", queue="default") == 5
    assert value(waits, "strego_task_wait_seconds_count", queue="other") == 1
    assert value(waits, "strego_task_wait_seconds_bucket", queue="default", le="1.0") == 5


async def _check_heartbeat(inspector: strego.Inspector) -> None:
    """The same counts, published in the heartbeat (one collector, two outputs)."""

    async def published() -> bool:
        workers = await inspector.workers()
        return bool(workers) and workers[0].processed == 3

    await wait_until(published, timeout=15)  # the next heartbeat (every 5 s)
    (info,) = await inspector.workers()
    assert (info.processed, info.failed) == (3, 3)  # failed: 2 retried + 1 dead
    types = {(t.queue, t.type): t for t in info.task_types}
    assert set(types) == {
        ("default", "ok"),
        ("other", "ok"),
        ("default", "flaky"),
        ("default", "boom"),
    }
    flaky = types[("default", "flaky")]
    assert (flaky.processed, flaky.failed, sum(flaky.buckets)) == (1, 2, 3)
    assert isinstance(flaky, TaskTypeStats) and flaky.percentile_ms(0.95) is not None


async def _check_endpoints(http: httpx.AsyncClient, worker: WorkerProcess) -> None:
    health = await http.get(worker.url("/healthz"))
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["redis_silent_s"] < 30
    missing = await http.get(worker.url("/nope"))
    assert missing.status_code == 404 and "/healthz, /metrics" in missing.text
    posted = await http.post(worker.url("/metrics"))
    assert posted.status_code == 405
    openmetrics = await http.get(
        worker.url("/metrics"), headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
