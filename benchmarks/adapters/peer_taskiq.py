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
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import arg, dist_version, handle_async, main
from taskiq.receiver import Receiver
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

# The result workload needs a result backend (the others run without one, the default).
RESULTS = os.environ.get("BENCH_RESULTS") == "1"


async def noop(ts: Any = 0.0) -> None:
    await handle_async(ts)


async def answer(n: int) -> int:
    return n * 2


def build(url: str) -> tuple[RedisStreamBroker, Any]:
    broker = RedisStreamBroker(url, queue_name="bench", consumer_id="0")
    if RESULTS:
        broker = broker.with_result_backend(RedisAsyncResultBackend(url, result_ex_time=600))
    task = broker.task(task_name="noop")(noop)
    broker.task(task_name="answer")(answer)
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
        await self.task.kiq(ts=arg(ts))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        await asyncio.gather(*(self.task.kiq(ts=arg(ts)) for ts in stamps))

    async def round_trip(self) -> Any:
        """``wait_result`` polls the backend: every 1 ms here (default 0.2 s)."""
        assert self.broker is not None
        sent = await self.broker.find_task("answer").kiq(n=21)  # type: ignore[union-attr]
        result = await sent.wait_result(check_interval=0.001, timeout=10)
        return result.return_value

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
