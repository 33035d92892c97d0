"""SAQ (redis-py lists + BLMOVE): the no-op workload through its documented API.

Fastest documented settings: ``ttl=-1`` (the job record is deleted when it finishes),
no job timeout, ``Worker(concurrency=C)``, ``dequeue_timeout=0`` (block in BLMOVE);
``max_concurrent_ops=100`` so a gathered batch of 100 enqueues is not throttled, and a
1000-connection pool (redis-py's default cap of 100 breaks concurrency 100).
SAQ has no bulk enqueue: a batch is ``asyncio.gather`` of 100 ``enqueue`` calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import arg, dist_version, handle_async, main
from redis import asyncio as aioredis
from saq import Worker
from saq.queue.redis import RedisQueue

JOB_OPTIONS: dict[str, Any] = {"ttl": -1, "timeout": 0, "retries": 1}


async def answer(ctx: dict[str, Any], *, n: int) -> int:
    return n * 2


async def noop(ctx: dict[str, Any], *, ts: Any = 0.0) -> None:
    await handle_async(ts)


def make_queue(url: str) -> RedisQueue:
    # redis-py >= 6 caps a pool at 100 connections; a worker holds one per slot in BLMOVE.
    client = aioredis.from_url(url, max_connections=1000)
    return RedisQueue(client, name="bench", max_concurrent_ops=100)


class Saq:
    def __init__(self) -> None:
        self.queue: RedisQueue | None = None

    def version(self) -> str:
        return dist_version("saq", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.queue = make_queue(url)
        await self.queue.connect()

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.disconnect()

    async def enqueue_one(self, ts: float) -> None:
        assert self.queue is not None
        await self.queue.enqueue("noop", ts=arg(ts), **JOB_OPTIONS)

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.queue is not None
        queue = self.queue
        await asyncio.gather(*(queue.enqueue("noop", ts=arg(ts), **JOB_OPTIONS) for ts in stamps))

    async def round_trip(self) -> Any:
        """``Queue.apply``: enqueue, then poll the job: every 1 ms here (default 0.5 s)."""
        assert self.queue is not None
        return await self.queue.apply("answer", timeout=10, poll_interval=0.001, n=21)

    def work(self, url: str, concurrency: int) -> None:
        async def run() -> None:
            queue = make_queue(url)
            await queue.connect()
            functions = [("noop", noop), ("answer", answer)]
            worker = Worker(queue, functions=functions, concurrency=concurrency)
            await worker.start()

        asyncio.run(run())


if __name__ == "__main__":
    main(Saq())
