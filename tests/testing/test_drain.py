"""strego.testing.drain: run a Server until its queues are quiet."""

from __future__ import annotations

import asyncio
import time

import pytest

import strego
from strego.testing import drain


def _server(broker: strego.RedisBroker, **options: object) -> strego.Server:
    return strego.Server(broker, retry_base=0.01, retry_max=0.05, **options)  # type: ignore[arg-type]


async def test_drain_runs_every_task_and_stops_the_server_it_started(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """drain starts an idle server, runs all waiting tasks, then stops it again."""
    server = _server(broker)
    seen: list[int] = []

    @server.handle("add")
    async def add(n: int) -> None:
        seen.append(n)

    await client.enqueue_many([strego.Task("add", n) for n in range(20)])
    await drain(server, timeout=10)
    assert sorted(seen) == list(range(20))
    assert not server.running
    info = await inspector.queue_info("default")
    assert (info.pending, info.active, info.processed) == (0, 0, 20)


async def test_drain_leaves_a_running_server_running(
    broker: strego.RedisBroker, client: strego.Client
) -> None:
    """A server that was already started is still running after drain."""
    server = _server(broker)
    done = asyncio.Event()
    server.handle("ping", lambda task: done.set())
    async with server:
        await client.enqueue(strego.Task("ping"))
        await drain(server)
        assert server.running
        assert done.is_set()


async def test_drain_follows_retries_to_the_end(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A task that fails twice and then succeeds has succeeded when drain returns."""
    server = _server(broker)
    attempts: list[int] = []

    @server.handle("flaky")
    async def flaky(task: strego.Task) -> None:
        attempts.append(task.retry_count)
        if task.retry_count < 2:
            raise RuntimeError("not yet")

    @server.handle("doomed")
    async def doomed(task: strego.Task) -> None:
        raise RuntimeError("always")

    await client.enqueue(strego.Task("flaky", max_retry=5))
    await client.enqueue(strego.Task("doomed", max_retry=2))
    await drain(server)
    assert attempts == [0, 1, 2]
    info = await inspector.queue_info("default")
    assert (info.processed, info.dead, info.retry) == (1, 1, 0)


async def test_drain_leaves_future_tasks_scheduled_and_runs_due_ones(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Scheduled-for-later stays scheduled; a task already due is run."""
    server = _server(broker)
    ran: list[str] = []
    server.handle("job", lambda name: ran.append(name))
    later = await client.enqueue(strego.Task("job", "later", process_in=60))
    await client.enqueue(strego.Task("job", "due", process_in=0.05))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await drain(server)
    assert ran == ["due"]
    assert time.monotonic() - started < 5
    record = await inspector.get_task(later.id)
    assert record is not None
    assert record.state == strego.TaskState.SCHEDULED


async def test_drain_waits_for_tasks_that_handlers_enqueue(
    broker: strego.RedisBroker, client: strego.Client
) -> None:
    """Follow-up tasks enqueued by a handler are drained too."""
    server = _server(broker, queues=["default", "next"])
    finished: list[str] = []

    @server.handle("first")
    async def first(task: strego.Task) -> None:
        await asyncio.sleep(0.05)
        await client.enqueue(strego.Task("second", queue="next"))

    @server.handle("second")
    async def second(task: strego.Task) -> None:
        finished.append(task.type)

    await client.enqueue(strego.Task("first"))
    await drain(server)
    assert finished == ["second"]


async def test_drain_times_out_saying_what_is_left(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """On a paused queue drain gives up after the timeout and names the backlog."""
    server = _server(broker)
    server.handle("never", lambda task: None)
    await client.enqueue_many([strego.Task("never") for _ in range(3)])
    await inspector.pause("default")
    with pytest.raises(TimeoutError, match="default: 3 pending"):
        await drain(server, timeout=0.5)
    assert not server.running
