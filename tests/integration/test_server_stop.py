"""Stopping a worker never hangs on a loop that swallowed its cancellation (core fix)."""

from __future__ import annotations

import asyncio

import strego
from strego.worker.engine import cancel_and_wait
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
