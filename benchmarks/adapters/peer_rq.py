"""RQ (redis-py lists, synchronous): the no-op workload.

Fastest documented settings: ``SimpleWorker`` (runs jobs in the worker process
instead of forking a work horse per job), ``result_ttl=0`` (no result kept),
logging at WARNING. RQ runs one job at a time per process, so ``concurrency`` does
not apply: scale is more processes. Bulk enqueue: ``Queue.enqueue_many`` of
``Queue.prepare_data`` (one pipeline).
"""

from __future__ import annotations

from typing import Any

from _common import arg, dist_version, handle_sync, main
from redis import Redis
from rq import Queue, SimpleWorker

NOOP = "peer_rq.noop"  # the worker imports this module by name to find the function


def noop(ts: Any = 0.0) -> None:
    handle_sync(ts)


class Rq:
    def __init__(self) -> None:
        self.queue: Queue | None = None

    def version(self) -> str:
        return dist_version("rq", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.queue = Queue("bench", connection=Redis.from_url(url))

    async def close(self) -> None:
        if self.queue is not None:
            self.queue.connection.close()

    async def enqueue_one(self, ts: float) -> None:
        assert self.queue is not None
        self.queue.enqueue(NOOP, arg(ts), result_ttl=0)

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.queue is not None
        self.queue.enqueue_many(
            [Queue.prepare_data(NOOP, args=(arg(ts),), result_ttl=0) for ts in stamps]
        )

    def work(self, url: str, concurrency: int) -> None:
        connection = Redis.from_url(url)
        worker = SimpleWorker([Queue("bench", connection=connection)], connection=connection)
        worker.work(logging_level="WARNING")


if __name__ == "__main__":
    main(Rq())
