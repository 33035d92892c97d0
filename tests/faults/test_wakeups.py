"""Idle workers pick up new work at once: no wake-up is lost to a race with a fetch."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.harness import Fleet, wait_all_done, wait_ready

pytestmark = pytest.mark.faults

TASKS = 150
BLOCK_S = 5.0


@pytest.mark.timeout(120)
async def test_no_wake_up_is_lost(fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str) -> None:
    """Tasks enqueued one by one at random gaps start within 1 s (block is 5 s)."""
    fleet.base = dataclasses.replace(fleet.base, concurrency=2, block=BLOCK_S, fsync=False)
    for i in range(3):
        fleet.spawn(f"w{i}")
    await wait_ready(fault_redis.url, prefix, [w.spec.consumer for w in fleet.workers])
    rng = random.Random(7)
    enqueued: dict[str, float] = {}
    async with (
        strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults") as broker,
        strego.Client(broker) as client,
    ):
        for i in range(TASKS):
            # Half due now, half a moment later (promoted by a worker's scheduler).
            task = strego.Task("work", {}, process_in=0.05 if i % 2 else None)
            enqueued[(await client.enqueue(task)).id] = time.time() + (0.05 if i % 2 else 0)
            await asyncio.sleep(rng.uniform(0, 0.03))
    reader = fleet.reader()
    await wait_all_done(reader, list(enqueued), timeout_s=60, fleet=fleet)
    latency = sorted(r.at - enqueued[r.task_id] for r in reader.records if r.event == "D")
    print(f"pickup latency: median {latency[len(latency) // 2]:.3f}s, max {latency[-1]:.3f}s")
    assert latency[-1] < 1.0, f"a wake-up was lost: {latency[-5:]}"
