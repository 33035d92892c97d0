"""Workers SIGKILLed under load: every task completes, duplicates stay bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.harness import Fleet, wait_all_done, wait_ready, wait_settled

pytestmark = pytest.mark.faults

TASKS = 10_000
WORKERS = 4
CONCURRENCY = 8
HANDLER_S = 0.1  # 4 x 8 slots / 0.1 s = 320 tasks/s at best: the load spans the kills
KILL_EVERY_S = 1.0
KILL_FOR_S = 30.0


async def enqueue_all(url: str, prefix: str) -> list[str]:
    """10 000 tasks, a quarter with a sync (thread pool) handler."""
    tasks = [
        strego.Task("sync_work" if i % 4 == 0 else "work", {"sleep": HANDLER_S})
        for i in range(TASKS)
    ]
    async with (
        strego.RedisBroker(url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        infos = await client.enqueue_many(tasks)
    ids = [info.id for info in infos if isinstance(info, strego.TaskInfo)]
    assert len(ids) == TASKS
    return ids


async def kill_and_restart(fleet: Fleet, rng: random.Random) -> int:
    """SIGKILL a random worker every second for 30 s, restarting it at once.

    Half the restarts keep the consumer name (a StatefulSet pod: it re-runs its own
    pending entries), half take a new one (a new pod: others reclaim by XAUTOCLAIM).
    """
    kills = 0
    end = time.monotonic() + KILL_FOR_S
    while time.monotonic() < end:
        await asyncio.sleep(KILL_EVERY_S)
        worker = rng.choice(fleet.workers)
        fleet.kill(worker)
        kills += 1
        rename = rng.random() < 0.5
        worker.restart(f"{worker.spec.consumer.split('.')[0]}.{kills}" if rename else None)
    return kills


@pytest.mark.timeout(300)
async def test_sigkill_under_load_loses_nothing(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """10k tasks, 4 workers, a random worker SIGKILLed every second for 30 s: none lost."""
    fleet.base = dataclasses.replace(
        fleet.base, concurrency=CONCURRENCY, claim_stale_after=2.0, claim_check_interval=0.5
    )
    ids = await enqueue_all(fault_redis.url, prefix)
    for i in range(WORKERS):
        fleet.spawn(f"w{i}")
    await wait_ready(fault_redis.url, prefix, [w.spec.consumer for w in fleet.workers])
    seed = random.randrange(1 << 30)
    print(f"kill schedule seed: {seed}")
    kills = await kill_and_restart(fleet, random.Random(seed))

    reader = fleet.reader()
    took = await wait_all_done(reader, ids, timeout_s=180, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=TASKS)

    duplicates = reader.duplicates()
    print(f"kills: {kills}, drained {took:.1f}s after the last kill")
    print(f"duplicates: {len(duplicates)} tasks ran twice or more: {sorted(duplicates.items())}")
    assert set(reader.done) == set(ids), "a task ran that was never enqueued"
    assert info.processed == TASKS, "Redis must count exactly one ack per task"
    assert (info.dead_total, info.failed, info.retried) == (0, 0, 0), info
    assert len(duplicates) <= kills * CONCURRENCY
    for task_id, runs in duplicates.items():
        # Every extra run is explained by a kill: all but the last run were by killed pids.
        pids = reader.done_by(task_id)
        assert sum(pid in fleet.killed_pids for pid in pids) >= runs - 1, (task_id, pids)
