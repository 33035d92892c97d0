"""Huey with its Redis storage (one list: LPUSH / BRPOP): the no-op workload.

The worker is Huey's own ``Consumer`` in-process (what ``huey_consumer`` runs), with
``worker_type='thread'`` and ``workers=C``. Fastest documented settings: ``RedisHuey``
with ``blocking=True`` (each worker thread waits in BRPOP, so an idle worker wakes on
the push instead of polling; ``read_timeout=1`` s only bounds each BRPOP before it is
reissued), ``results=False`` and ``store_none=False`` (nothing written back),
``utc=True``, ``immediate=False``, pickle serializer (the default), no compression,
``periodic=False``, logging left at WARNING (``huey_consumer -q``), a connection pool of
``C + 10`` (redis-py's default cap of 100 is too small for ``workers=100``). The polling
delays (``initial_delay=0.01``, ``backoff=1.15``, ``max_delay=0.1``; defaults 0.1 / 1.15
/ 10 s) are the smallest sensible: with a blocking storage a worker never sleeps on an
empty queue, only after a failed read. Per task Huey's executor also reads the task's
revoke keys (HMGET) and clears its revoke flag (HDEL): that is its cost of a no-op,
kept.

Huey has no bulk enqueue (``Huey.enqueue`` is one LPUSH and a pipeline is not public):
a batch is 100 sequential calls, as in the Dramatiq adapter.
"""

from __future__ import annotations

from typing import Any

from _common import arg, dist_version, handle_sync, main
from huey import RedisHuey
from redis import ConnectionPool

QUEUE = "bench"


def build(url: str, connections: int | None = None) -> tuple[RedisHuey, Any]:
    """The Huey instance and its no-op task, the same on both sides of the queue.

    ``connections`` sizes the pool: each worker thread holds one connection through its
    BRPOP and the scheduler thread one more, and redis-py caps a pool at 100 by default,
    so at ``workers=100`` a thread would fail its read ("Too many connections") and sleep.
    """
    huey = RedisHuey(
        QUEUE,
        connection_pool=ConnectionPool.from_url(url, max_connections=connections),
        blocking=True,
        results=False,
        store_none=False,
        utc=True,
        immediate=False,
    )

    # The explicit name keys the registry: the producer and the consumer both run this
    # file as __main__, but the name must not depend on that.
    @huey.task(name="noop")
    def noop(ts: Any = 0.0) -> None:
        handle_sync(ts)

    return huey, noop


class Huey:
    def __init__(self) -> None:
        self.huey: RedisHuey | None = None
        self.task: Any = None

    def version(self) -> str:
        return dist_version("huey", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.huey, self.task = build(url)

    async def close(self) -> None:
        if self.huey is not None:
            self.huey.storage.pool.disconnect()

    async def enqueue_one(self, ts: float) -> None:
        self.task(arg(ts))  # results=False: enqueues and returns None

    async def enqueue_batch(self, stamps: list[float]) -> None:
        for ts in stamps:
            self.task(arg(ts))

    def work(self, url: str, concurrency: int) -> None:
        huey, _task = build(url, connections=concurrency + 10)
        consumer = huey.create_consumer(
            workers=concurrency,
            worker_type="thread",
            periodic=False,
            initial_delay=0.01,
            backoff=1.15,
            max_delay=0.1,
        )
        # Consumer.run installs its own handlers: SIGTERM (the harness's stop) stops the
        # workers without waiting for them; they are daemon threads.
        consumer.run()


if __name__ == "__main__":
    main(Huey())
