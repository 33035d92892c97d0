"""A worker process for the workflow SIGKILL tests (configured like
tests/integration/worker_app.py): STREGO_REDIS_URL, STREGO_PREFIX, WORKER_LOG.
Run: python -m tests.workflows.flow_worker
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import strego


def _log(line: str) -> None:
    with open(os.environ["WORKER_LOG"], "a") as log:
        log.write(f"{line} {os.getpid()}\n")
        log.flush()
        os.fsync(log.fileno())


def build() -> strego.Server:
    broker = strego.RedisBroker(
        os.environ["STREGO_REDIS_URL"],
        prefix=os.environ["STREGO_PREFIX"],
        group="tests",
        claim_stale_after=1.0,
        claim_check_interval=0.3,
    )
    server = strego.Server(
        broker, concurrency=8, shutdown_timeout=5, retry_base=0.02, retry_max=0.1
    )

    @server.handle("member")
    async def member(payload: int) -> int:
        await asyncio.sleep(random.uniform(0.005, 0.05))
        return payload

    @server.handle("callback")
    async def callback(task: strego.Task) -> list[Any]:
        _log(f"callback {task.id} {len(task.upstream_results)}")
        return task.upstream_results

    return server


if __name__ == "__main__":
    build().run()
