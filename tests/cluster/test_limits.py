"""Global limits on one Redis, a Redis Cluster and Sentinel: limiters in their own
slots, queue-wide limits inside fetch on three masters, and the limiter check and the
park (separate scripts, often on separate masters) idempotent across a crash."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import strego
from strego.outcome import Parked
from strego.worker.gate import slot_member
from tests.cluster.conftest import Target
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


@contextlib.asynccontextmanager
async def limited_server(
    target: Target,
    prefix: str,
    handler: Callable[..., Any],
    limits: list[strego.RateLimit | strego.ConcurrencyLimit],
    **options: Any,
) -> AsyncIterator[strego.Server]:
    broker = strego.RedisBroker(
        target.url, prefix=prefix, group="tests", claim_stale_after=0.5, claim_check_interval=0.1
    )
    server = strego.Server(broker, **options)
    server.handle("call", handler, limits=limits)
    try:
        async with server:
            yield server
    finally:
        await broker.aclose()


async def test_limits_across_masters(
    target: Target,
    prefix: str,
    client: strego.Client,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """A RateLimit shared by three queues (on three masters) and a queue-wide
    ConcurrencyLimit checked in the fetch: every task runs once, none is retried, the
    starts are spaced by the rate, and Inspector.limits() reads both limiters."""
    starts: list[float] = []
    retries: list[int] = []

    async def call(task: strego.Task) -> None:
        starts.append(time.monotonic())
        retries.append(task.retry_count)

    rate = strego.RateLimit("shared", 20)
    async with limited_server(
        target,
        prefix,
        call,
        [rate],
        queues=queues,
        concurrency=10,
        queue_limits={queues[0]: strego.ConcurrencyLimit("first", 1)},
    ):
        await client.enqueue_many([strego.Task("call", queue=queues[i % 3]) for i in range(30)])
        await wait_until(lambda: len(starts) == 30, timeout=30)
        found = {lim.name: lim for lim in await inspector.limits()}
    assert retries == [0] * 30
    assert (starts[-1] - starts[0]) >= 29 / 20 * 0.95  # 20 a second across all masters
    assert found["shared"].granted == 30 and found["shared"].queue is None
    # A task of the first queue may take its queue slot more than once: parked by the
    # rate limit after the fetch took its slot (the slot freed), fetched again later.
    assert found["first"].queue == queues[0] and found["first"].granted >= 10


async def test_check_then_crash_before_park_loses_nothing(
    target: Target, prefix: str, client: strego.Client, queues: list[str]
) -> None:
    """A worker books a task with the limiter, then dies before parking it: asking
    again gives the same booking (not a second one), the task is reclaimed and runs
    once, not retried; the dead worker's late park is dropped by the fence."""
    queue = queues[1]
    rate = strego.RateLimit("api", 2)  # one start per 500 ms
    crashed = strego.RedisBroker(target.url, prefix=prefix, group="tests", consumer="crashed")
    try:
        await crashed.prepare([queue])
        info = await client.enqueue(strego.Task("call", queue=queue))
        assert (await crashed.limits.ask(rate, None, "", queue, "earlier", "m")).now
        [delivery] = (await crashed.fetch([(queue, 1)]))[queue] or []
        member = slot_member(delivery)
        first = await crashed.limits.ask(rate, None, "", queue, info.id, member)
        again = await crashed.limits.ask(rate, None, "", queue, info.id, member)
        assert not first.reserved and 0.3 < first.wait_s <= 0.5  # come back in ~0.5 s
        assert first.wait_s - 0.2 < again.wait_s <= first.wait_s  # the same booking
        # ... and the worker dies here, before the park.
        runs: list[tuple[str, int]] = []

        async def call(task: strego.Task) -> None:
            runs.append((task.id, task.retry_count))

        async with limited_server(target, prefix, call, [rate], queues=[queue]):
            await wait_until(lambda: runs == [(info.id, 0)], timeout=20)
            late = await crashed.apply(
                [(delivery, Parked(info.id, delivery.blob or b"", 1, "api"))]
            )
            assert late == [info.id]  # superseded: dropped, not parked
        record = await strego.Inspector(crashed).get_task(info.id, queue)
        assert record is not None and record.state == "completed" and record.retry_count == 0
    finally:
        await crashed.aclose()


async def test_limits_taken_ahead_with_the_fetch_across_masters(
    target: Target,
    prefix: str,
    client: strego.Client,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """Limits far from their limit (a RateLimit with a large burst, a large
    ConcurrencyLimit) are taken ahead in the fetch pipeline, which on a cluster spans
    the queues' masters and the limiters' own: every task runs once, none is
    retried, and once idle the limiters hold no slot and count every start (the rate
    limiter maybe a few more: see below)."""
    runs: list[tuple[str, int]] = []

    async def call(task: strego.Task) -> None:
        runs.append((task.id, task.retry_count))

    limits: list[strego.RateLimit | strego.ConcurrencyLimit] = [
        strego.ConcurrencyLimit("pool", 500),
        strego.RateLimit("api", 10_000, burst=100),
    ]
    async with limited_server(target, prefix, call, limits, queues=queues, concurrency=10):
        await client.enqueue_many([strego.Task("call", queue=queues[i % 3]) for i in range(300)])
        await wait_until(lambda: len(runs) == 300, timeout=30)

        async def settled() -> bool:
            found = {lim.name: lim for lim in await inspector.limits()}
            pool, api = found.get("pool"), found.get("api")
            return (
                pool is not None
                and api is not None
                and (pool.in_use, pool.granted) == (0, 300)
                # A start taken ahead and not used stays spent when another grant
                # came in between (its give-back is fenced): a few, on the safe side.
                and 300 <= api.granted <= 320
            )

        try:
            await wait_until(settled, timeout=10)
        except AssertionError:
            raise AssertionError(await inspector.limits()) from None
    assert len({task_id for task_id, _ in runs}) == 300
    assert {retries for _, retries in runs} == {0}
