"""arq (redis-py, sorted set + polling): the no-op workload through its documented API.

Fastest documented settings: ``max_jobs=C``, ``keep_result=0`` (no result stored),
``poll_delay=0.01`` (default 0.5 s: arq polls its sorted set, so this bounds both
throughput and idle latency), ``queue_read_limit`` at its default (max(5*C, 100)).
arq has no bulk enqueue: a batch is ``asyncio.gather`` of 100 ``enqueue_job`` calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import arg, dist_version, handle_async, main
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func


async def answer(ctx: dict[str, Any], n: int) -> int:
    return n * 2


async def noop(ctx: dict[str, Any], ts: Any = 0.0) -> None:
    await handle_async(ts)


class Arq:
    def __init__(self) -> None:
        self.pool: ArqRedis | None = None

    def version(self) -> str:
        return dist_version("arq", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(url))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    async def enqueue_one(self, ts: float) -> None:
        assert self.pool is not None
        await self.pool.enqueue_job("noop", arg(ts))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.pool is not None
        pool = self.pool
        await asyncio.gather(*(pool.enqueue_job("noop", arg(ts)) for ts in stamps))

    async def round_trip(self) -> Any:
        """``job.result()`` polls the result key: every 1 ms here (default 0.5 s)."""
        assert self.pool is not None
        job = await self.pool.enqueue_job("answer", 21)
        assert job is not None
        return await job.result(timeout=10, poll_delay=0.001)

    def work(self, url: str, concurrency: int) -> None:
        worker = Worker(
            functions=[func(noop, name="noop"), func(answer, name="answer", keep_result=600)],
            redis_settings=RedisSettings.from_dsn(url),
            max_jobs=concurrency,
            keep_result=0,
            poll_delay=0.01,
        )
        worker.run()


if __name__ == "__main__":
    main(Arq())
