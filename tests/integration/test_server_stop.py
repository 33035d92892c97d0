"""Stopping a worker never hangs on a loop that swallowed its cancellation (core fix)."""

from __future__ import annotations

import asyncio

import pytest

import strego
from strego.worker.engine import cancel_and_wait
from tests.conftest import wait_until
from tests.support.servers import start_redis


async def test_cancel_and_wait_recancels_a_task_that_swallowed_the_first_cancel() -> None:
    """A task that drops one CancelledError (as Python 3.11's wait_for can) still ends."""
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:  # what wait_for does when the inner future won
            swallowed.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait([task])
    assert swallowed.is_set() and task.cancelled()


async def test_stop_right_after_start_returns_promptly() -> None:
    """start() then stop() at once ends in seconds, even while loops are still connecting."""
    for _ in range(3):
        redis = start_redis()
        try:
            async with strego.RedisBroker(redis.url, group="tests") as broker:
                server = strego.Server(broker, queues=["default"])
                server.handle("t", lambda task: None)
                async with asyncio.timeout(10), server:
                    pass
        finally:
            redis.cleanup()


@pytest.mark.timeout(120)
async def test_stop_is_not_lost_to_a_fast_reclaim_timer(redis_url: str) -> None:
    """A worker whose reclaim timer ticks as often as stop() retries its cancel (0.1 s)
    still stops: on Python 3.11 asyncio.wait_for dropped a cancellation that arrived as
    the wake-up event was set, so every retry could be lost and stop() hung (seen in
    CI, where the cluster suite's crashed-consumer test hung in teardown; a script of
    that test's shape hung about one stop in six before the fix and 0 in 36 after; this
    test, the same shape on one Redis, did not reproduce it here: it is the guard)."""
    queues = ["a", "b", "c"]
    ran: list[str] = []
    for cycle in range(10):
        prefix = f"stop{cycle}-{id(queues)}"
        broker = strego.RedisBroker(
            redis_url, prefix=prefix, group="tests", claim_stale_after=0.5, claim_check_interval=0.1
        )
        server = strego.Server(broker, queues=queues)
        ran.clear()

        async def work(task: strego.Task) -> None:
            ran.append(task.id)

        server.handle("w", work)
        async with strego.Client(strego.RedisBroker(redis_url, prefix=prefix)) as client:
            for queue in queues:
                await client.enqueue(strego.Task("w", queue=queue))
        await server.start()
        await wait_until(lambda: len(ran) == len(queues))
        await asyncio.sleep(0.3)  # idle, through a few reclaim ticks
        await asyncio.wait_for(server.stop(), 10)
        await broker.aclose()
