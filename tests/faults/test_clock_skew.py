"""Clock skew between producers and workers (±45 s): due times follow Redis's clock."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.harness import REPO, Fleet, wait_all_done, wait_ready

pytestmark = pytest.mark.faults

SKEW_S = 45.0  # more than the registry's 60 s heartbeat TTL between the two
DELAY_S = 3.0
LATE_OK_S = 1.0  # a loaded 2-core machine; ~0.1 s on an idle one


async def run_producer(url: str, prefix: str, skew: float) -> list[dict[str, Any]]:
    """Run a producer process whose clock is ``skew`` seconds off; return its rows."""
    args = ["--redis", url, "--prefix", prefix, "--skew", str(skew), "--delay", str(DELAY_S)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults.skewed_producer", *args,
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


@pytest.mark.timeout(90)
async def test_skewed_producers_and_workers_keep_schedules(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """process_in runs on time whatever the clocks say; process_at follows the producer's clock."""
    fleet.base = dataclasses.replace(fleet.base, concurrency=8)
    fleet.spawn("fast", clock_skew_s=SKEW_S)  # the workers' clocks are off too
    fleet.spawn("slow", clock_skew_s=-SKEW_S)
    await wait_ready(fault_redis.url, prefix, ["fast", "slow"])
    ahead, behind = await asyncio.gather(
        run_producer(fault_redis.url, prefix, SKEW_S),
        run_producer(fault_redis.url, prefix, -SKEW_S),
    )
    reader = fleet.reader()
    runnable = behind + [r for r in ahead if r["kind"] == "in"]
    await wait_all_done(reader, [r["id"] for r in runnable], timeout_s=30, fleet=fleet)
    await asyncio.sleep(1.0)  # room for a wrong second run
    reader.poll()
    ran_at = {r.task_id: r.at for r in reader.records if r.event == "D"}

    lateness = []
    for row in ahead + behind:
        if row["kind"] == "in":  # due = enqueue + delay, on Redis's clock
            lateness.append(ran_at[row["id"]] - (row["enqueued_at"] + row["due"]))
    print(f"process_in lateness: min {min(lateness):.3f}s max {max(lateness):.3f}s")
    assert min(lateness) > -0.05, "a process_in task ran early"
    assert max(lateness) < LATE_OK_S, "a process_in task ran late"

    for row in behind:  # producer behind: its 'in 3 s' is already past in real time: runs now
        if row["kind"] == "at":
            assert ran_at[row["id"]] - row["enqueued_at"] < LATE_OK_S
    async with strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults") as broker:
        inspector = strego.Inspector(broker)
        for row in ahead:  # producer ahead: its 'in 3 s' is SKEW_S + 3 s away in real time
            if row["kind"] == "at":
                record = await inspector.get_task(row["id"])
                assert record is not None and record.state == "scheduled", record
                assert record.process_at is not None
                real_wait = record.process_at.timestamp() - row["enqueued_at"]
                assert abs(real_wait - (SKEW_S + DELAY_S)) < 1.0, real_wait
                assert row["id"] not in ran_at
        workers = sorted(w.name for w in await inspector.workers())
    assert reader.duplicates() == {}, "a scheduled task ran twice"
    assert workers == ["fast", "slow"], "a skewed worker vanished from the registry"
