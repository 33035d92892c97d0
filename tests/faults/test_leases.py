"""Leases: long handlers on live workers run once; a frozen worker's late ack is dropped."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.execlog import ExecLogReader
from tests.faults.harness import (
    Fleet,
    WorkerProcess,
    queue_info,
    wait_all_done,
    wait_ready,
    wait_settled,
)

pytestmark = pytest.mark.faults

WORKERS = 3
CLAIM_STALE_AFTER_S = 1.0


async def start_fleet(fleet: Fleet, url: str, prefix: str) -> None:
    fleet.base = dataclasses.replace(
        fleet.base,
        concurrency=4,
        claim_stale_after=CLAIM_STALE_AFTER_S,
        claim_check_interval=0.25,
        log_starts=True,
    )
    for i in range(WORKERS):
        fleet.spawn(f"w{i}")
    await wait_ready(url, prefix, [w.spec.consumer for w in fleet.workers])


async def enqueue(url: str, prefix: str, tasks: list[strego.Task]) -> list[str]:
    async with (
        strego.RedisBroker(url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        return [(await client.enqueue(task)).id for task in tasks]


async def wait_started(reader: ExecLogReader, task_id: str, times: int, timeout_s: float) -> int:
    """Wait until ``task_id`` has been started ``times`` times; return the last starter's pid."""
    deadline = time.monotonic() + timeout_s
    while reader.started[task_id] < times:
        assert time.monotonic() < deadline, f"{task_id} not started {times} times"
        await asyncio.sleep(0.02)
        reader.poll()
    return reader.started_by(task_id)[-1]


@pytest.mark.timeout(60)
async def test_long_handlers_on_live_workers_run_exactly_once(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """Handlers running 10x claim_stale_after are never stolen while their worker lives."""
    await start_fleet(fleet, fault_redis.url, prefix)
    tasks = [strego.Task("work", {"sleep": 10 * CLAIM_STALE_AFTER_S}) for _ in range(6)]
    tasks += [strego.Task("sync_work", {"sleep": 10 * CLAIM_STALE_AFTER_S}) for _ in range(3)]
    ids = await enqueue(fault_redis.url, prefix, tasks)
    reader = fleet.reader()
    await wait_all_done(reader, ids, timeout_s=30, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=len(ids))
    assert all(reader.started[i] == 1 and reader.done[i] == 1 for i in ids), reader.records
    assert info.processed == len(ids)
    for worker in fleet.workers:  # nobody reclaimed anything, nobody lost a lease
        assert "lease lost" not in worker.output(), worker.output()
        assert "reclaimed" not in worker.output(), worker.output()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("wake", ["while_new_owner_runs", "after_new_owner_acked"])
async def test_frozen_worker_late_ack_is_dropped(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str, wake: str
) -> None:
    """A SIGSTOPped worker's task is reclaimed; after SIGCONT its late ack changes nothing."""
    await start_fleet(fleet, fault_redis.url, prefix)
    handler_s = 3.0
    (task_id,) = await enqueue(fault_redis.url, prefix, [strego.Task("work", {"sleep": handler_s})])
    reader = fleet.reader()
    frozen_pid = await wait_started(reader, task_id, 1, timeout_s=10)
    frozen = next(w for w in fleet.workers if w.pid == frozen_pid)
    frozen.signal(signal.SIGSTOP)
    try:
        owner_pid = await wait_started(reader, task_id, 2, timeout_s=10 * CLAIM_STALE_AFTER_S)
        assert owner_pid != frozen_pid
        owner = next(w for w in fleet.workers if w.pid == owner_pid)
        if wake == "after_new_owner_acked":
            await wait_settled(fault_redis.url, prefix, processed=1)
    finally:
        frozen.signal(signal.SIGCONT)

    # After SIGCONT the frozen worker either sends its late outcome (dropped by the
    # fence) or its next renewal finds the lease lost first and stops the handler.
    await wait_until_logged(frozen, ("late outcome dropped", "lease lost"))
    info = await wait_settled(fault_redis.url, prefix, processed=1)
    await asyncio.sleep(1.0)  # room for any further (wrong) ack to land
    info = await queue_info(fault_redis.url, prefix)
    async with strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults") as broker:
        record = await strego.Inspector(broker).get_task(task_id)
    reader.poll()
    print(f"{wake}: ran by {reader.done_by(task_id)} (frozen {frozen_pid}), record {record}")
    assert record is not None and record.state == strego.TaskState.COMPLETED
    assert record.worker == owner.spec.consumer, "the final state is the new owner's"
    assert (info.processed, info.completed, info.dead_total, info.size) == (1, 1, 0, 0), info
    assert owner_pid in reader.done_by(task_id)
    assert set(reader.done_by(task_id)) <= {frozen_pid, owner_pid}
    assert "late outcome dropped" not in owner.output(), "the new owner's ack must land"


async def wait_until_logged(
    worker: WorkerProcess, texts: tuple[str, ...], timeout_s: float = 15
) -> None:
    """Wait until the worker's log contains one of ``texts``."""
    deadline = time.monotonic() + timeout_s
    while not any(text in worker.output() for text in texts):
        assert time.monotonic() < deadline, f"none of {texts} logged\n{worker.output()}"
        await asyncio.sleep(0.05)
