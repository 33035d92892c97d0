"""Celery's chord of N no-op members, run by the Celery venv's python (see
benchmarks/workflows.py): a worker subprocess (threads pool, concurrency C, the
settings of peer_celery.py but with results on, which a chord needs), then the time
from ``chord(...).apply_async()`` to the callback's result.

Usage: python celery_chord.py URL N CONCURRENCY   (prints {"seconds": ...})
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from celery import Celery, chord


def build(url: str) -> tuple[Celery, Any, Any]:
    app = Celery("chordbench", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_default_queue="chordbench",
        worker_disable_rate_limits=True,
        worker_prefetch_multiplier=32,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        result_expires=3600,
    )

    def noop() -> None:
        return None

    def callback(results: list[Any]) -> int:
        return len(results)

    return app, app.task(name="noop")(noop), app.task(name="callback")(callback)


def main() -> int:
    url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if len(sys.argv) > 4 and sys.argv[4] == "--worker":
        app, _, _ = build(url)
        app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}",
                         "--without-gossip", "--without-mingle", "--without-heartbeat",
                         "--loglevel=WARNING"])  # fmt: skip
        return 0
    worker = subprocess.Popen(
        [sys.executable, __file__, url, str(n), str(concurrency), "--worker"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app, noop, callback = build(url)
        ping = noop.apply_async()  # the worker is up and idle before the clock starts
        ping.get(timeout=120)
        started = time.perf_counter()
        result = chord(noop.s() for _ in range(n))(callback.s())
        assert result.get(timeout=900) == n
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(30)
    print(json.dumps({"seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
