"""Priorities, queue weights, cancellation, pause/resume, task lookup and counters."""

from __future__ import annotations

import asyncio
from collections import Counter

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import processed_at_least, state_is


async def test_priority_order_under_backlog(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """With a backlog, higher-priority tasks are delivered first."""
    order: list[int] = []

    async def work(payload: dict[str, int]) -> None:
        order.append(payload["p"])

    await client.enqueue_many(
        [strego.Task("w", {"p": i % 11}, priority=i % 11) for i in range(110)]
    )
    await make_server({"w": work}, concurrency=1)
    await wait_until(lambda: len(order) == 110)
    assert order == sorted(order, reverse=True)


async def test_weighted_queues_share_within_10_percent(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """Over 1 000 tasks, queues weighted 3:1 are served within ±10 % of their shares."""
    served: list[str] = []

    async def work(task: strego.Task) -> None:
        served.append(task.queue)

    for queue in ("critical", "low"):
        await client.enqueue_many([strego.Task("w", queue=queue) for _ in range(1000)])
    await make_server({"w": work}, queues={"critical": 3, "low": 1}, concurrency=5)
    await wait_until(lambda: len(served) >= 1000, timeout=30)
    share = Counter(served[:1000])["critical"] / 1000
    assert abs(share - 0.75) <= 0.075
    assert Counter(served[:1000])["low"] > 0  # no starvation


async def test_strict_priority_queues(client: strego.Client, make_server: ServerFactory) -> None:
    """strict_priority drains the first queue before touching the next."""
    served: list[str] = []

    async def work(task: strego.Task) -> None:
        served.append(task.queue)

    await client.enqueue_many([strego.Task("w", queue="low") for _ in range(20)])
    await client.enqueue_many([strego.Task("w", queue="high") for _ in range(20)])
    await make_server({"w": work}, queues=["high", "low"], strict_priority=True, concurrency=2)
    await wait_until(lambda: len(served) == 40)
    assert served[:20] == ["high"] * 20


async def test_cancel_in_each_state(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Cancel works for pending, scheduled, retry and active tasks; never for finished ones."""
    started = asyncio.Event()
    runs: list[str] = []

    async def long(task: strego.Task) -> None:
        runs.append(task.type)
        started.set()
        await asyncio.sleep(30)

    async def fail(task: strego.Task) -> None:
        runs.append(task.type)
        raise strego.RetryAfter(60)

    pending = await client.enqueue(strego.Task("long", queue="idle"))
    scheduled = await client.enqueue(strego.Task("long", process_in=60))
    assert await client.cancel(pending.id)
    assert await client.cancel(scheduled.id, queue="default")
    retrying = await client.enqueue(strego.Task("fail"))
    await make_server({"long": long, "fail": fail})
    await wait_until(lambda: state_is(inspector, retrying.id, "retry"))
    assert await client.cancel(retrying.id)
    active = await client.enqueue(strego.Task("long"))
    await asyncio.wait_for(started.wait(), 5)
    assert await client.cancel(active.id)
    await wait_until(lambda: state_is(inspector, active.id, "cancelled"))
    for info in (pending, scheduled, retrying):
        assert await state_is(inspector, info.id, "cancelled")
    assert not await client.cancel(active.id)  # already finished
    assert not await client.cancel("no-such-task")
    assert runs == ["fail", "long"]
    assert (await inspector.queue_info("default")).cancelled == 3


async def test_pause_and_resume(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A paused queue is not fetched from (enqueue still works); resume restarts it."""
    done: list[int] = []

    async def work(payload: dict[str, int]) -> None:
        done.append(payload["n"])

    await make_server({"w": work})
    await inspector.pause("default")
    info = await client.enqueue(strego.Task("w", {"n": 1}))
    assert info.state == "pending"
    await asyncio.sleep(1.0)
    assert done == []
    assert (await inspector.queue_info("default")).paused
    await inspector.resume("default")
    await wait_until(lambda: done == [1], timeout=3)


async def test_get_task_through_its_life(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """get_task follows a task: pending → active (worker, started) → completed."""
    gate = asyncio.Event()

    async def work(task: strego.Task) -> None:
        await gate.wait()

    info = await client.enqueue(strego.Task("w", {"a": 1}, labels={"team": "x"}))
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "pending" and record.payload == {"a": 1}
    server = await make_server({"w": work})
    await wait_until(lambda: state_is(inspector, info.id, "active"))
    record = await inspector.get_task(info.id)
    assert record is not None
    assert record.worker == server.broker.consumer and record.started_at is not None
    gate.set()
    await wait_until(lambda: state_is(inspector, info.id, "completed"))
    record = await inspector.get_task(info.id)
    assert record is not None and record.completed_at is not None
    assert record.labels == {"team": "x"}
    points = await inspector.throughput("default", minutes=2)
    assert sum(p.processed for p in points) == 1


async def test_completed_history_is_bounded(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    broker: strego.RedisBroker,
) -> None:
    """Only the last keep_completed finished tasks are kept; memory does not grow."""

    async def noop(task: strego.Task) -> None:
        return None

    infos = await client.enqueue_many([strego.Task("n") for _ in range(50)])
    await make_server({"n": noop}, keep_completed=10)
    await wait_until(lambda: processed_at_least(inspector, 50))
    keys = broker.keys("default")
    assert await broker.redis.hlen(keys.index) == 10
    assert await broker.redis.hlen(keys.bodies) == 10
    assert await broker.redis.llen(keys.finished) == 10
    ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    assert await inspector.get_task(ids[0]) is None
    assert (await inspector.queue_info("default")).completed == 10
    stream_lengths = [await broker.redis.xlen(s) for s in keys.streams]
    assert sum(stream_lengths) == 0  # acknowledged entries are deleted
