"""Network faults between strego and Redis: connections cut, then half-open."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import Iterator

import pytest

import strego
from strego.embedded import EmbeddedRedis
from tests.faults.execlog import ExecLogReader
from tests.faults.harness import Fleet, Producer, wait_all_done, wait_ready, wait_settled
from tests.faults.proxy import Proxy

pytestmark = pytest.mark.faults

WORKERS = 2
CONCURRENCY = 8
FAULT_S = 5.0
SOCKET_TIMEOUT_S = 1.0
ENQUEUE_ATTEMPTS = 3
WORKER_BLOCK_S = 5.0


@pytest.fixture
def proxy(fault_redis: EmbeddedRedis) -> Iterator[Proxy]:
    proxy = Proxy(fault_redis.port).start()
    yield proxy
    proxy.close()


def enqueue_bound_s() -> float:
    """The longest a failing enqueue may take: per attempt a connect and a read
    timeout, plus the backoff between attempts (0.05 s doubling), plus slack."""
    backoff: float = sum(0.05 * 2.0**i for i in range(ENQUEUE_ATTEMPTS - 1))
    return ENQUEUE_ATTEMPTS * 2 * SOCKET_TIMEOUT_S + backoff + 1.0


async def enqueue_gives_up(client: strego.Client) -> float:
    """One enqueue during the fault: it raises BrokerUnavailableError in bounded time."""
    began = time.monotonic()
    with pytest.raises(strego.BrokerUnavailableError):
        await asyncio.wait_for(client.enqueue(strego.Task("work", {})), timeout=60)
    took = time.monotonic() - began
    assert took <= enqueue_bound_s(), f"enqueue took {took:.1f}s to give up"
    return took


async def pickup_s(client: strego.Client, reader: ExecLogReader, probes: list[str]) -> float:
    """Seconds from enqueue until a fresh task has run: how fast work is picked up."""
    began = time.monotonic()
    info = await client.enqueue(strego.Task("work", {}))
    probes.append(info.id)
    await wait_all_done(reader, [info.id], timeout_s=30, poll_s=0.01)
    return time.monotonic() - began


@pytest.mark.timeout(180)
async def test_cut_and_half_open_links_lose_nothing(
    fleet: Fleet, proxy: Proxy, fault_redis: EmbeddedRedis, prefix: str
) -> None:
    """Links cut for 5 s, then half-open for 5 s: no crash, no loss, quick resume."""
    fleet.base = dataclasses.replace(
        fleet.base,
        redis_url=proxy.url,  # workers and the client both go through the proxy
        concurrency=CONCURRENCY,
        socket_timeout=2.0,
        block=WORKER_BLOCK_S,
        claim_stale_after=4.0,  # shorter than the faults: leases do expire meanwhile
        claim_check_interval=1.0,
    )
    for i in range(WORKERS):
        fleet.spawn(f"w{i}")
    await wait_ready(fault_redis.url, prefix, [w.spec.consumer for w in fleet.workers])
    pids = [w.pid for w in fleet.workers]
    reader = fleet.reader()
    probes: list[str] = []
    broker = strego.RedisBroker(
        proxy.url,
        prefix=prefix,
        group="faults",
        socket_timeout=SOCKET_TIMEOUT_S,
        enqueue_attempts=ENQUEUE_ATTEMPTS,
    )
    async with broker, strego.Client(broker) as client:
        await asyncio.sleep(1.0)  # let the workers go idle: pickup now needs a wake-up
        before = [await pickup_s(client, reader, probes) for _ in range(3)]
        producer = Producer(client, every_s=0.1).start()
        await asyncio.sleep(2.0)

        proxy.cut()
        cut_gave_up_s = await enqueue_gives_up(client)
        await asyncio.sleep(FAULT_S - cut_gave_up_s)
        proxy.heal()
        after_cut_s = await pickup_s(client, reader, probes)

        proxy.blackhole()
        hole_gave_up_s = await enqueue_gives_up(client)
        await asyncio.sleep(max(0.0, FAULT_S - hole_gave_up_s))
        proxy.heal(reset_stale=False)  # the black-holed connections stay silent forever
        after_hole_s = await pickup_s(client, reader, probes)
        await asyncio.sleep(1.0)
        await producer.stop()

        # Idle workers learn of new work by pub/sub wake-ups; theirs went silent in the
        # half-open phase. Without a liveness check they would fall back to polling
        # every `block` seconds, forever.
        await asyncio.sleep(WORKER_BLOCK_S + 2.0)
        after = [await pickup_s(client, reader, probes) for _ in range(3)]

    took = await wait_all_done(reader, producer.ok, timeout_s=60, fleet=fleet)
    info = await wait_settled(fault_redis.url, prefix, processed=len(reader.done))
    duplicates = reader.duplicates()
    print(
        f"enqueue gave up after {cut_gave_up_s:.2f}s (cut) and {hole_gave_up_s:.2f}s "
        f"(half-open), bound {enqueue_bound_s():.1f}s; pickup after the cut "
        f"{after_cut_s:.2f}s, after the half-open phase {after_hole_s:.2f}s; idle pickup "
        f"before {before}, after {after}; enqueued {len(producer.ok)}, "
        f"{len(producer.failures)} batches failed; drained in {took:.1f}s; "
        f"duplicates {duplicates}"
    )
    assert [w.pid for w in fleet.alive()] == pids, "a worker exited\n" + fleet.tails()
    assert producer.failures, "the faults never reached the producer"
    assert max(took for took, _ in producer.failures) <= enqueue_bound_s()
    assert after_cut_s < 5 and after_hole_s < 5, fleet.tails()
    assert statistics.median(after) < 1.0, f"wake-ups lost after the half-open phase: {after}"
    assert set(reader.done) <= {*producer.ok, *producer.unknown, *probes}
    assert info.dead_total == 0
    # A fault longer than claim_stale_after lets another worker reclaim tasks whose
    # outcome could not be recorded meanwhile: they run again (at-least-once), at most
    # once more per fault and worker slot.
    assert len(duplicates) <= 2 * WORKERS * CONCURRENCY
