"""A worker process for subprocess tests, configured by environment variables.

STREGO_REDIS_URL, STREGO_PREFIX, WORKER_LOG (file each handler start/finish is appended
to, outside the system under test), WORKER_SLEEP (seconds a task takes).
Run: python -m tests.integration.worker_app
"""

from __future__ import annotations

import asyncio
import os

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
        claim_stale_after=float(os.environ.get("CLAIM_STALE_AFTER", "1")),
        claim_check_interval=0.2,
    )
    server = strego.Server(
        broker, concurrency=4, shutdown_timeout=10, retry_base=0.02, retry_max=0.1
    )
    sleep_s = float(os.environ.get("WORKER_SLEEP", "0"))

    @server.handle("work")
    async def work(task: strego.Task) -> None:
        _log(f"start {task.id}")
        await asyncio.sleep(sleep_s)
        _log(f"done {task.id}")

    @server.handle("flaky")
    async def flaky(task: strego.Task) -> None:
        await asyncio.sleep(0.01)
        if task.retry_count < 2:
            raise RuntimeError("not yet")
        _log(f"done {task.id}")

    @server.handle("answer")
    async def answer(payload: int, task: strego.Task) -> dict[str, int]:
        await asyncio.sleep(sleep_s)
        _log(f"returned {task.id}")  # a SIGKILL may land between this and the ack
        return {"n": payload * 2}

    return server


if __name__ == "__main__":
    build().run()
