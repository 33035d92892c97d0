"""Dramatiq with its Redis broker (lists + Lua): the no-op workload.

The worker is ``dramatiq.Worker`` in-process (what each ``dramatiq`` CLI process runs)
with ``worker_threads=C``. Fastest documented settings: default middleware without
results, ``max_retries=0``, queue prefetch at its default (2 x threads), and
``worker_timeout=100`` ms (the idle back-off cap, ``dramatiq_worker_timeout``;
default 1000 ms). Dramatiq has no bulk enqueue: a batch is 100 sequential ``send``.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import dramatiq
from _common import arg, dist_version, handle_sync, main
from dramatiq.brokers.redis import RedisBroker


def noop(ts: Any = 0.0) -> None:
    handle_sync(ts)


def build(url: str) -> tuple[RedisBroker, Any]:
    broker = RedisBroker(url=url)
    actor = dramatiq.actor(
        noop, actor_name="noop", queue_name="bench", broker=broker, max_retries=0
    )
    return broker, actor


class Dramatiq:
    def __init__(self) -> None:
        self.actor: Any = None

    def version(self) -> str:
        return dist_version("dramatiq", "redis", "hiredis")

    async def open(self, url: str) -> None:
        _broker, self.actor = build(url)

    async def close(self) -> None:
        return None

    async def enqueue_one(self, ts: float) -> None:
        self.actor.send(arg(ts))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        for ts in stamps:
            self.actor.send(arg(ts))

    def work(self, url: str, concurrency: int) -> None:
        broker, _actor = build(url)
        worker = dramatiq.Worker(broker, worker_threads=concurrency, worker_timeout=100)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        worker.start()
        stop.wait()
        worker.stop(timeout=1000)


if __name__ == "__main__":
    main(Dramatiq())
