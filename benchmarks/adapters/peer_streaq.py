"""streaq (coredis, Redis Streams): the no-op workload through its documented API.

Fastest documented settings: ``ttl=0`` (results are not stored), ``silent=True`` (no
per-task log line), ``max_tries=None``; prefetch at its default (= concurrency);
bulk enqueue with ``Worker.enqueue_many`` (one pipeline).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from _common import arg, dist_version, handle_async, main
from streaq import Worker


async def noop(ts: Any = 0.0) -> None:
    await handle_async(ts)


def build(url: str, concurrency: int = 10) -> tuple[Worker[Any], Any]:
    worker: Worker[Any] = Worker(redis_url=url, concurrency=concurrency, queue_name="bench")
    task = worker.task(name="noop", ttl=0, silent=True, max_tries=None)(noop)
    return worker, task


class Streaq:
    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.worker: Worker[Any] | None = None
        self.task: Any = None

    def version(self) -> str:
        return dist_version("streaq", "coredis")

    async def open(self, url: str) -> None:
        self.worker, self.task = build(url)
        await self.stack.enter_async_context(self.worker)

    async def close(self) -> None:
        await self.stack.aclose()

    async def enqueue_one(self, ts: float) -> None:
        await self.task.enqueue(ts=arg(ts))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.worker is not None
        await self.worker.enqueue_many([self.task.enqueue(ts=arg(ts)) for ts in stamps])

    def work(self, url: str, concurrency: int) -> None:
        worker, _task = build(url, concurrency)
        asyncio.run(worker.run_async())


if __name__ == "__main__":
    main(Streaq())
