"""SIGTERM under load: in-flight handlers finish, workers exit 0, the rest runs later."""

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
CONCURRENCY = 5


async def enqueue(url: str, prefix: str, tasks: list[strego.Task]) -> list[str]:
    async with (
        strego.RedisBroker(url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        infos = await client.enqueue_many(tasks)
    return [i.id for i in infos if isinstance(i, strego.TaskInfo)]


async def start_generation(fleet: Fleet, url: str, prefix: str, gen: int) -> list[WorkerProcess]:
    workers = [fleet.spawn(f"g{gen}w{i}") for i in range(WORKERS)]
    await wait_ready(url, prefix, [w.spec.consumer for w in workers])
    return workers


async def sigterm_all(workers: list[WorkerProcess]) -> tuple[float, list[int], list[float]]:
    """SIGTERM every worker at once; return when, exit codes and seconds to exit."""
    sent = time.time()
    began = time.monotonic()
    for worker in workers:
        worker.signal(signal.SIGTERM)
    codes, took = [], []
    for worker in workers:
        codes.append(await worker.wait_exit(60))
        took.append(time.monotonic() - began)
    return sent, codes, took


def started_unfinished(reader: ExecLogReader, pids: set[int]) -> set[str]:
    """Tasks one of ``pids`` started and did not finish."""
    started = {(r.task_id, r.pid) for r in reader.records if r.event == "S" and r.pid in pids}
    done = {(r.task_id, r.pid) for r in reader.records if r.event == "D" and r.pid in pids}
    return {task_id for task_id, _ in started - done}


@pytest.mark.timeout(120)
async def test_sigterm_lets_in_flight_handlers_finish(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """SIGTERM mid-flow: every started handler finishes, exit 0, the next workers do the rest."""
    fleet.base = dataclasses.replace(
        fleet.base, concurrency=CONCURRENCY, shutdown_timeout=5.0, log_starts=True
    )
    ids = await enqueue(
        fault_redis.url,
        prefix,
        [strego.Task("sync_work" if i % 3 == 0 else "work", {"sleep": 1.0}) for i in range(120)],
    )
    first = await start_generation(fleet, fault_redis.url, prefix, 1)
    await asyncio.sleep(2.5)  # mid-flow: some done, WORKERS x CONCURRENCY running
    sent, codes, took = await sigterm_all(first)

    reader = fleet.reader()
    reader.poll()
    first_pids = {w.pid for w in first}
    ran_first = {r.task_id for r in reader.records if r.event == "D"}
    late_starts = [r for r in reader.records if r.event == "S" and r.at > sent + 0.2]
    assert codes == [0] * WORKERS, fleet.tails()
    assert max(took) < 5.0, f"shutdown took {took}"
    assert not started_unfinished(reader, first_pids), "an in-flight handler was cut off"
    assert not late_starts, "a task started after SIGTERM"
    assert 0 < len(ran_first) < len(ids)

    await start_generation(fleet, fault_redis.url, prefix, 2)
    await wait_all_done(reader, ids, timeout_s=60, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=len(ids))
    print(f"first workers ran {len(ran_first)} tasks, exited in {took}")
    assert reader.duplicates() == {}, "a graceful shutdown must not run anything twice"
    assert info.processed == len(ids)


@pytest.mark.timeout(120)
# Sync handlers run on daemon threads (strego.worker.threads): a thread past
# shutdown_timeout cannot be cancelled, but it no longer keeps the process alive.
@pytest.mark.parametrize("task_type", ["work", "sync_work"])
async def test_handlers_past_shutdown_timeout_are_reclaimed(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str, task_type: str
) -> None:
    """Handlers longer than shutdown_timeout are cut off and handed back to the queue at
    once (waiting, not held by the dead workers), then run on the next workers."""
    fleet.base = dataclasses.replace(
        fleet.base,
        concurrency=CONCURRENCY,
        shutdown_timeout=1.0,
        log_starts=True,
        claim_stale_after=2.0,
        claim_check_interval=0.5,
    )
    ids = await enqueue(
        fault_redis.url, prefix, [strego.Task(task_type, {"sleep": 6.0}) for _ in range(30)]
    )
    first = await start_generation(fleet, fault_redis.url, prefix, 1)
    await asyncio.sleep(1.0)
    _, codes, took = await sigterm_all(first)
    print(f"{task_type}: exited in {took}")
    assert codes == [0] * WORKERS, fleet.tails()
    # Waiting the handlers out would take 5 s more (they sleep 6 s, cut at 1 s); the
    # margin over shutdown_timeout leaves room for a loaded CI machine, not for that.
    assert max(took) < 1.0 + 2.5, f"shutdown took {took}s, shutdown_timeout is 1s"

    reader = fleet.reader()
    reader.poll()
    cut_off = started_unfinished(reader, {w.pid for w in first})
    assert len(cut_off) == WORKERS * CONCURRENCY, "every slot held a task cut off at shutdown"
    info = await queue_info(fault_redis.url, prefix)
    assert (info.active, info.pending) == (0, len(ids)), "cut-off tasks are handed back at once"

    await start_generation(fleet, fault_redis.url, prefix, 2)
    await wait_all_done(reader, ids, timeout_s=90, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=len(ids))
    assert reader.duplicates() == {}
    assert info.processed == len(ids)
