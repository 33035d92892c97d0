"""Celery with the Redis broker (kombu lists): the no-op workload.

The worker is ``app.worker_main`` in-process with the ``threads`` pool, so
"1 process at concurrency C" is one OS process with C threads. Fastest documented
settings (Celery's "Optimizing" guide): ``task_ignore_result``, no result backend,
``worker_disable_rate_limits``, ``worker_prefetch_multiplier=32`` (high for many
short tasks), ``--without-gossip --without-mingle --without-heartbeat``, log level
WARNING. Celery has no bulk enqueue: a batch is 100 ``apply_async`` on one producer.
"""

from __future__ import annotations

from typing import Any

from _common import arg, dist_version, handle_sync, main
from celery import Celery


def noop(ts: Any = 0.0) -> None:
    handle_sync(ts)


def build(url: str) -> tuple[Celery, Any]:
    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue="bench",
        worker_disable_rate_limits=True,
        worker_prefetch_multiplier=32,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    task = app.task(name="noop")(noop)
    return app, task


class CeleryPeer:
    def __init__(self) -> None:
        self.app: Celery | None = None
        self.task: Any = None

    def version(self) -> str:
        return dist_version("celery", "kombu", "redis", "hiredis")

    async def open(self, url: str) -> None:
        self.app, self.task = build(url)

    async def close(self) -> None:
        if self.app is not None:
            self.app.close()

    async def enqueue_one(self, ts: float) -> None:
        self.task.apply_async((arg(ts),))

    async def enqueue_batch(self, stamps: list[float]) -> None:
        assert self.app is not None
        with self.app.producer_or_acquire() as producer:
            for ts in stamps:
                self.task.apply_async((arg(ts),), producer=producer)

    def work(self, url: str, concurrency: int) -> None:
        app, _task = build(url)
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=WARNING",
            ]
        )


if __name__ == "__main__":
    main(CeleryPeer())
