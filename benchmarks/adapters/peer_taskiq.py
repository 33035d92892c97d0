"""taskiq + taskiq-redis ``RedisStreamBroker`` (XREADGROUP): the no-op workload.

The worker is taskiq's own ``Receiver`` run in-process, exactly what ``taskiq worker``
runs in each child process (``broker.is_worker_process = True``), with
``max_async_tasks=C``. Fastest documented settings: no result backend (the default
dummy one), ``xread_count=100`` (the default), ack when saved (the default).
taskiq has no bulk enqueue: a batch is ``asyncio.gather`` of 100 ``kiq`` calls.
``consumer_id="0"`` so tasks enqueued before the worker starts are delivered.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import RECORDER, dist_version, main
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker


async def noop(ts: float = 0.0) -> None:
    RECORDER.start(ts)
    RECORDER.done()


def build(url: str) -> tuple[RedisStreamBroker, Any]:
    broker = RedisStreamBroker(url, queue_name="bench", consumer_id="0")
    task = broker.task(task_name="noop")(noop)
    return broker, task


class Taskiq:
    def __init__(self) -> None:
        self.broker: RedisStreamBroker | None = None
        self.task: Any = None

    def version(self) -> str:
        return dist_version("taskiq", "taskiq-redis", "redis")

    async def open(self, url: str) -> None:
        self.broker, self.task = build(url)
        await self.broker.startup()

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.shutdown()

    async def enqueue_one(self, ts: float) -> None:
        await self.task.kiq(ts=ts)

    async def enqueue_batch(self, stamps: list[float]) -> None:
        await asyncio.gather(*(self.task.kiq(ts=ts) for ts in stamps))

    def work(self, url: str, concurrency: int) -> None:
        async def run() -> None:
            broker, _task = build(url)
            broker.is_worker_process = True
            with ThreadPoolExecutor() as pool:
                receiver = Receiver(broker, executor=pool, max_async_tasks=concurrency)
                await receiver.listen(asyncio.Event())

        asyncio.run(run())


if __name__ == "__main__":
    main(Taskiq())
