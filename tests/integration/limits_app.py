"""A worker process for the global limits tests, configured by environment variables.

STREGO_REDIS_URL, STREGO_PREFIX, WORKER_LOG (each handler start and end is appended,
with time.time(), outside the system under test), LIMITS_MODE (rate, concurrency),
CONCURRENCY, WORKER_SLEEP (a task's payload may name its own: {"sleep": s}),
CLAIM_STALE_AFTER, LIMIT (of the ConcurrencyLimit; 3 by default).
Run: python -m tests.integration.limits_app
"""

from __future__ import annotations

import asyncio
import os
import time

import strego


def _log(kind: str, task: strego.Task) -> None:
    with open(os.environ["WORKER_LOG"], "a") as log:
        log.write(f"{kind} {task.id} {time.time():.6f} {task.retry_count} {os.getpid()}\n")
        log.flush()


def build() -> strego.Server:
    broker = strego.RedisBroker(
        os.environ["STREGO_REDIS_URL"],
        prefix=os.environ["STREGO_PREFIX"],
        group="tests",
        claim_stale_after=float(os.environ.get("CLAIM_STALE_AFTER", "30")),
        claim_check_interval=0.2,
    )
    server = strego.Server(
        broker, concurrency=int(os.environ.get("CONCURRENCY", "10")), shutdown_timeout=5
    )
    sleep_s = float(os.environ.get("WORKER_SLEEP", "0"))
    mode = os.environ.get("LIMITS_MODE", "rate")
    limit: strego.RateLimit | strego.ConcurrencyLimit
    if mode == "rate":
        limit = strego.RateLimit("api", 10, 1.0)
    else:
        limit = strego.ConcurrencyLimit("export", int(os.environ.get("LIMIT", "3")))

    @server.handle("limited", limits=[limit])
    async def limited(task: strego.Task) -> None:
        _log("start", task)
        own = task.payload.get("sleep") if isinstance(task.payload, dict) else None
        await asyncio.sleep(sleep_s if own is None else float(own))
        _log("end", task)

    return server


if __name__ == "__main__":
    build().run()
