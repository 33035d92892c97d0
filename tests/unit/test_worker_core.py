"""The worker core against an in-memory broker double: Engine wake-ups and empty
queues, reclaim room, QueueSelector, OutcomeSink. Fast and deterministic; the same
behaviour is also tested against real Redis in tests/integration and tests/faults."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import strego
from strego.broker.base import SignalKind
from strego.events import TaskEvent
from strego.outcome import Succeeded
from strego.worker.leases import LeaseTable
from strego.worker.outcomes import OutcomeSink
from strego.worker.selector import QueueSelector
from strego.worker.stats import WorkerStats
from tests.support.memory_broker import MemoryBroker, MemoryQueues

# -- Engine ---------------------------------------------------------------------------


@pytest.fixture
def queues() -> MemoryQueues:
    return MemoryQueues()


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    """Start a Server on a broker double; every one started is stopped afterwards."""
    servers: list[strego.Server] = []

    async def start(broker: MemoryBroker, concurrency: int = 2) -> strego.Server:
        server = strego.Server(
            broker, concurrency=concurrency, cleanup_interval=None, shutdown_timeout=1.0
        )

        @server.handle("quick")
        async def quick(payload: dict[str, Any]) -> None:
            return None

        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


def completed(queues: MemoryQueues, *task_ids: str) -> Callable[[], bool]:
    return lambda: all(queues.finished.get(t) == "completed" for t in task_ids)


async def test_an_empty_queue_is_read_again_only_after_a_wake_up(
    queues: MemoryQueues, running: Callable[..., Any]
) -> None:
    """An empty answer marks the queue dry: reclaim timers firing every 50 ms do not
    make the worker read it again (no busy loop); WORK wakes it at once."""
    broker = queues.broker("w1", block_s=60.0, claim_check_interval_s=0.05)
    await running(broker)
    await queues.wait_for(lambda: broker.calls.count("claim_stale") >= 6)
    assert len(broker.fetches) == 1, broker.fetches
    task = strego.Task("quick", {})
    queues.add(task)
    queues.signal("default", SignalKind.WORK)
    await queues.wait_for(completed(queues, task.id))


async def test_a_queue_whose_wake_up_was_lost_is_read_again_after_block(
    queues: MemoryQueues, running: Callable[..., Any]
) -> None:
    """No wake-up at all (a lost PUBLISH): the queue is read again after `block`."""
    broker = queues.broker("w1", block_s=0.1)
    await running(broker)
    await queues.wait_for(lambda: len(broker.fetches) >= 1)
    task = strego.Task("quick", {})
    queues.add(task)
    await queues.wait_for(completed(queues, task.id))


async def test_a_wake_up_during_a_fetch_in_flight_is_not_lost(
    queues: MemoryQueues, running: Callable[..., Any]
) -> None:
    """WORK arriving while an empty reply is on its way: the queue is read again at
    once, not after `block` (60 s here)."""
    broker = queues.broker("w1", block_s=60.0)
    broker.gate_fetch = asyncio.Event()
    await running(broker)
    await queues.wait_for(lambda: "fetch" in broker.calls)  # answered empty, in flight
    task = strego.Task("quick", {})
    queues.add(task)
    queues.signal("default", SignalKind.WORK)
    broker.gate_fetch.set()
    await queues.wait_for(completed(queues, task.id))


async def test_a_paused_queue_waits_for_a_wake_up(
    queues: MemoryQueues, running: Callable[..., Any]
) -> None:
    """fetch answers None for a paused queue: nothing runs until resumed and woken."""
    queues.paused.add("default")
    task = strego.Task("quick", {})
    queues.add(task)
    broker = queues.broker("w1", block_s=60.0)
    await running(broker)
    await queues.wait_for(lambda: len(broker.fetches) == 1)
    assert task.id not in queues.finished
    queues.paused.clear()
    queues.signal("default", SignalKind.WORK)
    await queues.wait_for(completed(queues, task.id))


async def test_reclaim_waits_for_a_free_slot(queues: MemoryQueues) -> None:
    """A worker whose slots are all running reclaims nothing, however often it is
    asked; once a slot frees, it reclaims (#13 item 5: no pile-up behind busy slots)."""
    release = asyncio.Event()
    broker = queues.broker("w1", block_s=60.0, claim_stale_after_s=0.0)
    server = strego.Server(broker, concurrency=1, cleanup_interval=None, shutdown_timeout=1.0)

    @server.handle("slow")
    async def slow(payload: dict[str, Any]) -> None:
        await release.wait()

    @server.handle("quick")
    async def quick(payload: dict[str, Any]) -> None:
        return None

    busy = strego.Task("slow", {})
    queues.add(busy)
    try:
        await server.start()
        await queues.wait_for(lambda: [e.task_id for e in queues.held_by("w1")] == [busy.id])
        stale = strego.Task("quick", {})
        entry = queues.entries[queues.add(stale)]
        entry.consumer, entry.deliveries = "dead", 1  # a dead worker's delivery
        queues.signal("default", SignalKind.RECLAIM)
        renewals = broker.calls.count("renew")
        await queues.wait_for(lambda: broker.calls.count("renew") >= renewals + 3)
        assert [e.consumer for e in queues.held_by("dead")] == ["dead"], "took it while busy"
        release.set()
        await queues.wait_for(completed(queues, busy.id, stale.id))
    finally:
        release.set()
        await server.stop()


# -- QueueSelector --------------------------------------------------------------------


def test_strict_order_gives_every_slot_to_the_first_queue_with_work() -> None:
    """Strict: the first queue in order that is not dry takes all free slots."""
    selector = QueueSelector({"high": 1, "low": 1}, strict=True)
    assert selector.plan(5, skip=()) == [("high", 5)]
    assert selector.plan(5, skip={"high"}) == [("low", 5)]


def test_nothing_to_plan_without_slots_or_queues() -> None:
    """No free slot, or every queue dry: an empty plan (the engine then waits)."""
    selector = QueueSelector({"a": 3, "b": 1}, strict=False)
    assert selector.plan(0, skip=()) == []
    assert selector.plan(4, skip={"a", "b"}) == []


def test_weighted_shares_follow_the_weights() -> None:
    """Weights 3:1 give about 75 % / 25 % of the slots over many fetches."""
    selector = QueueSelector({"a": 3, "b": 1}, strict=False, rng=random.Random(7))
    totals: Counter[str] = Counter()
    for _ in range(2000):
        for queue, count in selector.plan(4, skip=()):
            totals[queue] += count
    share = totals["a"] / (totals["a"] + totals["b"])
    assert 0.72 < share < 0.78, totals


def test_a_low_weight_queue_is_never_starved() -> None:
    """Weight 1 against 100 still gets slots; a single candidate gets all of them."""
    selector = QueueSelector({"big": 100, "small": 1}, strict=False, rng=random.Random(1))
    got = sum(n for _ in range(1000) for q, n in selector.plan(10, skip=()) if q == "small")
    assert got > 0
    assert selector.plan(10, skip={"big"}) == [("small", 10)]


# -- OutcomeSink ----------------------------------------------------------------------


class Recorder:
    """A history store that keeps events in a list."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []

    def record(self, event: TaskEvent) -> None:
        self.events.append(event)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def sink_parts(
    queues: MemoryQueues,
) -> AsyncIterator[tuple[MemoryBroker, LeaseTable, OutcomeSink, Recorder]]:
    broker = queues.broker("w1")
    leases = LeaseTable(lambda: 0.0)
    history = Recorder()
    stats = WorkerStats(["default"], known_type=lambda _: True)
    sink = OutcomeSink(broker, history, leases, "w1", stats)
    runner = asyncio.create_task(sink.run())
    yield broker, leases, sink, history
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_outcome_sink_retries_transient_failures_until_it_lands(
    queues: MemoryQueues, sink_parts: tuple[MemoryBroker, LeaseTable, OutcomeSink, Recorder]
) -> None:
    """Redis unreachable twice: the outcome is kept (the lease with it), then lands once."""
    broker, leases, sink, history = sink_parts
    task = strego.Task("quick", {})
    queues.add(task)
    (delivery,) = (await broker.fetch([("default", 1)]))["default"] or []
    lease = leases.add(delivery, 0.0)
    leases.identify(lease, task.id)
    broker.fail_next_applies = 2
    sink.put(lease, Succeeded(task.id), task.to_message())
    assert await sink.drain(timeout_s=5)
    assert broker.calls.count("apply failed") == 2 and broker.calls.count("apply") == 1
    assert queues.finished[task.id] == "completed"
    assert len(leases) == 0 and [e.state for e in history.events] == ["completed"]


async def test_outcome_sink_keeps_the_lease_while_redis_is_down(
    queues: MemoryQueues, sink_parts: tuple[MemoryBroker, LeaseTable, OutcomeSink, Recorder]
) -> None:
    """drain() times out while nothing lands; the lease stays (renewed, not lost)."""
    broker, leases, sink, history = sink_parts
    task = strego.Task("quick", {})
    queues.add(task)
    (delivery,) = (await broker.fetch([("default", 1)]))["default"] or []
    lease = leases.add(delivery, 0.0)
    broker.fail_next_applies = 1_000_000
    sink.put(lease, Succeeded(task.id), task.to_message())
    assert not await sink.drain(timeout_s=0.3)
    assert leases.get(delivery) is lease and task.id not in queues.finished
    assert history.events == []


async def test_outcome_sink_drops_a_superseded_outcome(
    queues: MemoryQueues, sink_parts: tuple[MemoryBroker, LeaseTable, OutcomeSink, Recorder]
) -> None:
    """Reclaimed elsewhere meanwhile: the late outcome is refused by the fence, no event
    is recorded, and the new owner still holds the task."""
    broker, leases, sink, history = sink_parts
    task = strego.Task("quick", {})
    queues.add(task)
    (delivery,) = (await broker.fetch([("default", 1)]))["default"] or []
    lease = leases.add(delivery, 0.0)
    reclaimed = await queues.broker("w2").claim_stale("default", 0.0, 10)
    assert [d.deliveries for d in reclaimed.deliveries] == [2]
    sink.put(lease, Succeeded(task.id), task.to_message())
    assert await sink.drain(timeout_s=5)
    assert history.events == [] and task.id not in queues.finished
    assert [e.consumer for e in queues.held_by("w2")] == ["w2"] and len(leases) == 0
