"""A master dies mid-flow: workers and clients follow the promoted replica, no restart.

A producer enqueues with ``wait_replicas=1`` while a worker processes; the master is
SIGKILLed; the topology promotes its replica. Every enqueue that returned (so a
replica had the task) must be processed; enqueues that raised may or may not be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

import strego
from tests.conftest import wait_until
from tests.support.topology import ClusterTopology, SentinelTopology

pytestmark = pytest.mark.cluster
log = logging.getLogger("tests.failover")


@pytest.fixture(scope="module")
def doomed_sentinel() -> Iterator[SentinelTopology]:
    """A sentinel setup of its own: this module kills its master."""
    topology = SentinelTopology(down_after_ms=1000).start()
    yield topology
    topology.cleanup()


@pytest.fixture(scope="module")
def doomed_cluster() -> Iterator[ClusterTopology]:
    """A cluster of its own with a short node timeout: this module kills a master."""
    topology = ClusterTopology(masters=3, replicas=1, node_timeout_ms=1000).start()
    yield topology
    topology.cleanup()


class Flow:
    """A worker and a durable producer running against one URL until stopped."""

    def __init__(self, url: str, prefix: str, queues: list[str]) -> None:
        # Short timeouts so a dead master is noticed in about a second.
        self.worker_broker = strego.RedisBroker(
            url, prefix=prefix, group="tests", claim_stale_after=2.0,
            claim_check_interval=0.5, socket_timeout=1.0, block=1.0,
        )  # fmt: skip
        self.client_broker = strego.RedisBroker(
            url, prefix=prefix, enqueue_attempts=2, socket_timeout=1.0
        )
        self.server = strego.Server(
            self.worker_broker, queues=queues, concurrency=8, retry_base=0.05, retry_max=0.2
        )
        self.server.handle("t", self._run)
        self.client = strego.Client(self.client_broker, wait_replicas=1, wait_timeout=1.0)
        self.queues = queues
        self.processed: dict[str, set[int]] = {q: set() for q in queues}
        self.acked: dict[str, set[int]] = {q: set() for q in queues}
        self.failed = 0
        self._producing = True
        self._producers: list[asyncio.Task[None]] = []

    async def _run(self, payload: int, task: strego.Task) -> None:
        await asyncio.sleep(0.005)
        self.processed[task.queue].add(payload)

    async def _produce(self, queue: str) -> None:
        n = 0
        while self._producing:
            n += 1
            try:
                await self.client.enqueue(strego.Task("t", n, queue=queue))
            except strego.BrokerUnavailableError as exc:
                self.failed += 1
                log.info("enqueue %s/%d not acknowledged: %s", queue, n, exc)
                await asyncio.sleep(0.05)
                continue
            self.acked[queue].add(n)
            await asyncio.sleep(0.01)

    async def start(self) -> None:
        await self.server.start()
        self._producers = [asyncio.create_task(self._produce(q)) for q in self.queues]

    async def stop_producing(self) -> None:
        # A flag, not only cancel(): on Python 3.11 asyncio.wait_for (inside redis-py)
        # can swallow a cancellation that lands as its inner call completes.
        self._producing = False
        if self._producers:
            await asyncio.wait(self._producers, timeout=10)
        for producer in self._producers:
            producer.cancel()
        await asyncio.gather(*self._producers, return_exceptions=True)

    def acked_at_least(self, counts: dict[str, int]) -> bool:
        """Whether every queue has ``counts`` acknowledged enqueues (producers still up)."""
        for producer in self._producers:
            if producer.done():  # an error other than "unavailable" escaped: show it
                producer.result()
        return all(len(self.acked[q]) >= n for q, n in counts.items())

    def all_acked_processed(self) -> bool:
        return all(self.acked[q] <= self.processed[q] for q in self.queues)

    def lost(self) -> dict[str, set[int]]:
        return {q: self.acked[q] - self.processed[q] for q in self.queues}

    async def aclose(self) -> None:
        await self.stop_producing()
        await self.server.stop()
        await self.worker_broker.aclose()
        await self.client_broker.aclose()


@pytest.fixture
async def flows() -> AsyncIterator[list[Flow]]:
    started: list[Flow] = []
    yield started
    for flow in started:
        with contextlib.suppress(Exception):
            await flow.aclose()


async def test_sentinel_failover_loses_nothing_acknowledged(
    doomed_sentinel: SentinelTopology, prefix: str, flows: list[Flow]
) -> None:
    """After the master is killed, processing resumes on the promoted replica and
    every enqueue acknowledged with wait_replicas=1 is processed."""
    topology = doomed_sentinel
    flow = Flow(topology.url, prefix, ["q"])
    flows.append(flow)
    await flow.start()
    await wait_until(lambda: len(flow.processed["q"]) >= 30)

    old = topology.kill_master()
    new_master = await asyncio.to_thread(topology.wait_failover, old.port)
    # The new master has no replica until the old one returns, so WAIT fails meanwhile.
    # (Servers are started on the main thread: they then die with the test run.)
    topology.restart_as_replica(old)
    await asyncio.to_thread(topology.wait_stable, new_master)
    resumed = {"q": len(flow.acked["q"]) + 30}
    await wait_until(lambda: flow.acked_at_least(resumed), timeout=30)
    await flow.stop_producing()

    await wait_until(flow.all_acked_processed, timeout=30)
    assert flow.lost() == {"q": set()}
    assert flow.failed > 0  # the outage was real: some enqueues were refused


async def test_cluster_master_failover_loses_nothing_acknowledged(
    doomed_cluster: ClusterTopology, prefix: str, flows: list[Flow]
) -> None:
    """After one cluster master is killed, its replica takes over its queue; every
    enqueue acknowledged with wait_replicas=1, on every queue, is processed."""
    topology = doomed_cluster
    queues = topology.queues_on_masters()
    flow = Flow(topology.url, prefix, queues)
    flows.append(flow)
    await flow.start()
    await wait_until(lambda: all(len(flow.processed[q]) >= 20 for q in queues))

    victim = topology.master_of(queues[0])
    topology.kill(victim)
    await asyncio.to_thread(topology.wait_failover, victim)
    victim.start()  # rejoins as a replica of the promoted node
    await asyncio.to_thread(topology.wait_ok)
    resumed = {q: len(flow.acked[q]) + 20 for q in queues}
    await wait_until(lambda: flow.acked_at_least(resumed), timeout=30)
    await flow.stop_producing()

    await wait_until(flow.all_acked_processed, timeout=30)
    assert flow.lost() == {q: set() for q in queues}
    assert topology.master_of(queues[0]) is not victim  # its replica took over
