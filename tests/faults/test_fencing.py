"""Delivery core, round 2, with real worker processes: what only a process can show."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import pytest

import strego
from strego.embedded import EmbeddedRedis, free_port
from tests.faults.harness import Fleet, WorkerProcess, wait_ready

pytestmark = pytest.mark.faults


async def enqueue(url: str, prefix: str, tasks: list[strego.Task]) -> list[str]:
    async with strego.RedisBroker(url, prefix=prefix, group="faults") as broker:
        client = strego.Client(broker)
        return [info.id for info in await client.enqueue_many(tasks)]  # type: ignore[union-attr]


async def task_record(url: str, prefix: str, task_id: str) -> strego.TaskRecord | None:
    async with strego.RedisBroker(url, prefix=prefix, group="faults") as broker:
        return await strego.Inspector(broker).get_task(task_id)


@pytest.mark.timeout(120)
async def test_poison_cap_holds_for_a_stable_consumer_name(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """A task that kills its worker, restarted under one name (a StatefulSet pod):
    it runs max_deliveries times, then it is dead-lettered as poison."""
    fleet.base = dataclasses.replace(fleet.base, max_deliveries=3, log_starts=True)
    (task_id,) = await enqueue(fault_redis.url, prefix, [strego.Task("crash", {})])
    worker = fleet.spawn("pod-0")
    reader = fleet.reader()
    for _ in range(6):  # each generation dies running it, or finds it poisoned and lives
        record = await crash_or_dead(worker, fault_redis.url, prefix, task_id)
        if record is not None:
            break
        worker.restart()
    else:
        raise AssertionError("never dead-lettered")
    reader.poll()
    assert (record.state, record.dead_reason) == ("dead", "poison")
    assert reader.started[task_id] == 3
    assert worker.alive(), worker.output()


async def crash_or_dead(
    worker: WorkerProcess, url: str, prefix: str, task_id: str
) -> strego.TaskRecord | None:
    """Wait until the worker process dies (None) or the task is dead (its record)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = await task_record(url, prefix, task_id)
        if record is not None and record.state == "dead":
            return record
        if not worker.alive():
            assert await worker.wait_exit(1) == 1, worker.output()
            return None
        await asyncio.sleep(0.05)
    raise AssertionError(f"neither crashed nor dead-lettered\n{worker.output()}")


@pytest.mark.timeout(120)
async def test_graceful_shutdown_hands_work_back_at_once(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """Tasks a stopping worker cut off run on another live worker within seconds,
    not after claim_stale_after (300 s here)."""
    fleet.base = dataclasses.replace(
        fleet.base, concurrency=3, shutdown_timeout=0.5, log_starts=True
    )
    stopping = fleet.spawn("stopping")
    await wait_ready(fault_redis.url, prefix, ["stopping"])
    # Handlers far longer than a worker takes to start on a loaded machine (seen: 8 s),
    # so they are surely still running when SIGTERM comes.
    ids = await enqueue(
        fault_redis.url, prefix, [strego.Task("work", {"sleep": 60.0}) for _ in range(3)]
    )
    reader = fleet.reader()
    while sum(reader.started[i] for i in ids) < 3:
        reader.poll()
        await asyncio.sleep(0.05)
    other = fleet.spawn("other", concurrency=3)
    await wait_ready(fault_redis.url, prefix, ["other"])
    stopping.signal(signal.SIGTERM)
    assert await stopping.wait_exit(10) == 0, stopping.output()
    handed_back = time.time()
    deadline = time.monotonic() + 30
    while not all(other.pid in reader.started_by(i) for i in ids):
        assert time.monotonic() < deadline, f"not restarted elsewhere\n{fleet.tails()}"
        reader.poll()
        await asyncio.sleep(0.05)
    assert not reader.done, "cut off at shutdown, not finished"
    # Started elsewhere within seconds: far below claim_stale_after (300 s)
    took = max(r.at for r in reader.records if r.pid == other.pid) - handed_back
    assert took < 10, f"took {took:.1f}s"


@pytest.mark.timeout(60)
async def test_two_live_processes_never_share_a_consumer_name(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """A second process given a live worker's consumer name refuses to start."""
    first = fleet.spawn("same-name")
    await wait_ready(fault_redis.url, prefix, ["same-name"])
    second = fleet.spawn("same-name")
    code = await second.wait_exit(30)
    assert code != 0
    assert "in use by a live worker" in second.output()
    assert first.alive()


@pytest.mark.timeout(60)
async def test_sigterm_stops_a_worker_waiting_for_redis_at_start(
    fleet: Fleet, fault_redis: EmbeddedRedis
) -> None:
    """A worker that cannot reach Redis at start still stops on SIGTERM, at once."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    worker = fleet.spawn("unreachable", redis_url=url)
    deadline = time.monotonic() + 20
    while "cannot reach Redis" not in worker.output():
        assert time.monotonic() < deadline, worker.output()
        await asyncio.sleep(0.05)
    worker.signal(signal.SIGTERM)
    began = time.monotonic()
    assert await worker.wait_exit(10) == 0, worker.output()
    assert time.monotonic() - began < 3
