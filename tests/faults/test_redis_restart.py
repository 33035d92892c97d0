"""Redis restarted (AOF, fsync always) while tasks flow: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.harness import Fleet, Producer, wait_all_done, wait_ready, wait_settled

pytestmark = pytest.mark.faults

WORKERS = 3
CONCURRENCY = 8
ROUNDS = 5 if os.environ.get("STREGO_SOAK") == "1" else 1  # scripts/soak: 15 restarts


async def restart(server: EmbeddedRedis, *, kill: bool, down_s: float = 1.0) -> None:
    """Stop redis-server (SIGTERM, or SIGKILL), stay down a moment, start it again.

    Same port, same directory: it reloads its append-only file.
    """
    await asyncio.to_thread(server.stop, kill=kill)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(server.start)


@pytest.mark.redis_args("--appendonly", "yes", "--appendfsync", "always")
@pytest.mark.timeout(150 + 30 * ROUNDS)
async def test_redis_restarts_lose_no_acknowledged_task(
    fleet: Fleet, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """Every task whose enqueue returned runs despite 3 Redis restarts; no worker exits."""
    fleet.base = dataclasses.replace(
        fleet.base, concurrency=CONCURRENCY, claim_stale_after=5.0, claim_check_interval=1.0
    )
    for i in range(WORKERS):
        fleet.spawn(f"w{i}")
    await wait_ready(fault_redis.url, prefix, [w.spec.consumer for w in fleet.workers])
    pids = [w.pid for w in fleet.workers]

    broker = strego.RedisBroker(fault_redis.url, prefix=prefix, group="faults", enqueue_attempts=8)
    async with broker, strego.Client(broker) as client:
        producer = Producer(client).start()
        restarts = [(3.0, False), (3.0, False), (3.0, True)] * ROUNDS  # SIGTERM x2, SIGKILL
        for pause_s, kill in restarts:
            await asyncio.sleep(pause_s)
            await restart(fault_redis, kill=kill)
        await asyncio.sleep(2.0)
        await producer.stop()
        probe = await client.enqueue(strego.Task("work", {"sleep": 0}))  # the same client

    reader = fleet.reader()
    took = await wait_all_done(reader, [*producer.ok, probe.id], timeout_s=60, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=len(producer.ok) + 1)
    duplicates = reader.duplicates()
    print(
        f"enqueued ok: {len(producer.ok)}, enqueue failures: {producer.failures}, "
        f"drained {took:.1f}s after the last restart, duplicates: {duplicates}"
    )
    assert [w.pid for w in fleet.alive()] == pids, "a worker exited\n" + fleet.tails()
    assert all("WARNING" in w.output() for w in fleet.workers), "the outage went unseen"
    assert set(reader.done) <= {*producer.ok, *producer.unknown, probe.id}
    assert info.processed == len(reader.done), "one ack per task that ran"
    assert info.dead_total == 0
    assert len(duplicates) <= WORKERS * CONCURRENCY * len(restarts)
    for worker in fleet.workers:  # graceful stop still works after the outages
        worker.signal(signal.SIGTERM)
    for worker in fleet.workers:
        assert await worker.wait_exit(30) == 0
