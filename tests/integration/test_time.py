"""Scheduling, uniqueness windows and timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import state_is


async def test_scheduled_task_runs_on_time(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A task due in 1 s starts close to its due time, not on a fixed tick."""
    started: list[float] = []

    async def work(task: strego.Task) -> None:
        started.append(time.time())

    await make_server({"w": work})
    await asyncio.sleep(0.2)  # the worker is idle and asleep
    enqueued_at = time.time()
    info = await client.enqueue(strego.Task("w", process_in=1.0))
    assert info.state == "scheduled" and info.process_at is not None
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "scheduled"
    await wait_until(lambda: len(started) == 1, timeout=5)
    lateness = started[0] - (enqueued_at + 1.0)
    assert -0.05 < lateness < 0.5  # generous here; the benchmark reports the real figure


async def test_sooner_task_wakes_the_scheduler(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """Scheduling a task sooner than the earliest one wakes sleeping schedulers."""
    started: list[str] = []

    async def work(task: strego.Task) -> None:
        started.append(task.id)

    await client.enqueue(strego.Task("w", process_in=60))
    await make_server({"w": work})
    await asyncio.sleep(0.3)  # the scheduler now sleeps until the 60 s task
    soon = await client.enqueue(strego.Task("w", process_in=0.3))
    await wait_until(lambda: started == [soon.id], timeout=2)


async def test_process_at_in_the_past_runs_now(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """A process_at in the past is simply due: the task is pending at once."""
    done: list[str] = []

    async def work(task: strego.Task) -> None:
        done.append(task.id)

    info = await client.enqueue(strego.Task("w", process_at=datetime.now(UTC) - timedelta(hours=1)))
    assert info.state == "pending"
    await make_server({"w": work})
    await wait_until(lambda: done == [info.id])


async def test_unique_key_within_and_after_ttl(client: strego.Client) -> None:
    """A unique key blocks duplicates for unique_ttl, naming the holder; then frees."""
    first = await client.enqueue(strego.Task("t", unique_key="report:7", unique_ttl=0.5))
    try:
        await client.enqueue(strego.Task("t", unique_key="report:7"))
        raise AssertionError("expected DuplicateTaskError")
    except strego.DuplicateTaskError as exc:
        assert exc.task_id == first.id
    other_queue = await client.enqueue(strego.Task("t", unique_key="report:7", queue="other"))
    assert other_queue.state == "pending"  # keys are scoped to their queue
    await asyncio.sleep(0.6)
    assert (await client.enqueue(strego.Task("t", unique_key="report:7"))).state == "pending"


async def test_unique_duplicates_inside_enqueue_many(client: strego.Client) -> None:
    """A repeat inside one enqueue_many call is a duplicate, reported in its slot."""
    tasks = [strego.Task("t", unique_key=k) for k in ("a", "b", "a")]
    results = await client.enqueue_many(tasks)
    assert isinstance(results[0], strego.TaskInfo) and isinstance(results[1], strego.TaskInfo)
    assert isinstance(results[2], strego.DuplicateTaskError)
    assert results[2].task_id == tasks[0].id


async def test_async_timeout_counts_as_failed_attempt(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """An async handler past its timeout is cancelled and retried, TaskTimeoutError recorded."""
    attempts: list[int] = []

    async def slow(task: strego.Task) -> None:
        attempts.append(task.retry_count)
        assert task.deadline is not None
        await asyncio.sleep(5)

    info = await client.enqueue(strego.Task("s", timeout=0.2, max_retry=1))
    await make_server({"s": slow})
    await wait_until(lambda: state_is(inspector, info.id, "dead"), timeout=5)
    record = await inspector.get_task(info.id)
    assert record is not None and record.last_error is not None
    assert record.last_error.startswith("TaskTimeoutError")
    assert attempts == [0, 1]


async def test_sync_timeout_holds_the_slot(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A sync handler past its timeout is recorded as timed out; its slot stays taken."""
    release = threading.Event()
    ran: list[str] = []

    def stuck(task: strego.Task) -> None:
        ran.append(task.type)
        release.wait(5)

    def quick(task: strego.Task) -> None:
        ran.append(task.type)

    first = await client.enqueue(strego.Task("stuck", timeout=0.2, max_retry=0))
    await make_server({"stuck": stuck, "quick": quick}, concurrency=1)
    await wait_until(lambda: state_is(inspector, first.id, "dead"), timeout=5)
    await client.enqueue(strego.Task("quick"))
    await asyncio.sleep(0.4)
    assert ran == ["stuck"]  # the only slot is still held by the stuck thread
    release.set()
    await wait_until(lambda: ran == ["stuck", "quick"])
