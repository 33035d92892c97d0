"""Item 6: "retry all" retries each dead letter at most once per call.

It used to re-read the dead letters until none were left, so tasks that die again at
once (SkipRetry, an unknown type, a validation error, max_retry=0) were picked up again
by the same call: thousands of handlers ran dozens of times, and the call could loop for
as long as a worker kept killing them.
"""

from __future__ import annotations

import asyncio
import collections
import time

import pytest

import strego
from strego.store.postgres import PostgresStore
from tests.cli.conftest import Cli
from tests.conftest import wait_until
from tests.store.conftest import databases, pg_dsn  # noqa: F401


async def _dead_letters(
    broker: strego.RedisBroker, count: int, runs: collections.Counter[str]
) -> strego.Server:
    """``count`` dead letters, and a started worker whose handler dead-letters again at
    once (counting its runs per task); the caller stops it."""
    server = strego.Server(broker, queues=["default"], concurrency=64, dead_letter_max=count * 2)

    async def doomed(task: strego.Task) -> None:
        runs[task.id] += 1
        raise strego.SkipRetry("dies every time")

    server.handle("doomed", doomed)
    client = strego.Client(broker)
    for start in range(0, count, 5000):
        size = min(5000, count - start)
        await client.enqueue_many([strego.Task("doomed", {"n": i}) for i in range(size)])
    await server.start()
    inspector = strego.Inspector(broker)

    async def all_dead() -> bool:
        return (await inspector.queue_info("default")).dead >= count

    await wait_until(all_dead, timeout=120)
    return server


@pytest.mark.parametrize("count", [3000, 50_000])
async def test_retry_all_retries_each_dead_letter_once(
    broker: strego.RedisBroker, count: int
) -> None:
    """With the worker running (it kills every retried task at once), one call moves
    each dead letter once, and every handler ran at most twice."""
    runs: collections.Counter[str] = collections.Counter()
    server = await _dead_letters(broker, count, runs)
    inspector = strego.Inspector(broker)
    try:
        assert set(runs.values()) == {1}
        started = time.monotonic()
        moved = await asyncio.wait_for(inspector.retry_all_dead("default"), timeout=120)
        elapsed = time.monotonic() - started
        assert moved == count, moved

        async def settled() -> bool:
            info = await inspector.queue_info("default")
            return info.dead == count and info.pending == 0 and info.active == 0

        await wait_until(settled, timeout=120)
    finally:
        await server.stop()
    assert len(runs) == count
    assert max(runs.values()) == 2, collections.Counter(runs.values())
    assert (await inspector.queue_info("default")).dead_total == 2 * count
    print(f"retry_all_dead of {count} with a worker running: {elapsed:.2f}s")


async def test_cli_retry_all_with_progress_ends(broker: strego.RedisBroker, cli: Cli) -> None:
    """``strego dead retry-all --progress`` (the path that records history) used to loop
    the same way: it retries each of 3 000 dead letters once and exits."""
    runs: collections.Counter[str] = collections.Counter()
    server = await _dead_letters(broker, 3000, runs)
    try:
        result = await cli("dead", "retry-all", "default", "--progress")
    finally:
        await server.stop()
    assert result.code == 0, result.err
    assert "retried 3000 dead tasks" in result.out
    assert max(runs.values()) <= 2


@pytest.mark.postgres
async def test_retry_all_records_each_revival_in_history(
    broker: strego.RedisBroker,
    pg_dsn: str,
) -> None:
    """With a history store, the one call records every task it moved (the CLI used to
    retry one by one for that, and looped)."""
    runs: collections.Counter[str] = collections.Counter()
    server = await _dead_letters(broker, 20, runs)
    await server.stop()
    async with PostgresStore(pg_dsn, flush_interval=0.01) as store:
        inspector = strego.Inspector(broker, store)
        seen: list[int] = []
        assert await inspector.retry_all_dead("default", progress=seen.append) == 20
        assert seen and seen[-1] == 20
        assert await store.flush(timeout=10)
        for task_id in runs:
            row = await store.get(task_id)
            assert row is not None and row.state == strego.TaskState.PENDING, row
