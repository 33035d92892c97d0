"""Results are bounded: once they expire, Redis is back to its baseline."""

from __future__ import annotations

import asyncio
from typing import Any

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import processed_at_least, redis_broker

KEEP = 100  # finished records kept (the ring): filled before the baseline is taken
RESULT_BYTES = 2048
TASKS = 4000
TTL_S = 1.0


async def used_memory(client: strego.Client) -> int:
    return int((await redis_broker(client).redis.info("memory"))["used_memory"])


async def result_keys(client: strego.Client) -> int:
    return await count_keys(client, redis_broker(client).keys("default").result("*"))


async def count_keys(client: strego.Client, pattern: str) -> int:
    return len([k async for k in redis_broker(client).redis.scan_iter(match=pattern, count=1000)])


async def run_batch(
    client: strego.Client, inspector: strego.Inspector, done: int, n: int, waited: int
) -> int:
    """Enqueue ``n`` tasks (``waited`` of them awaited); return the processed count."""
    infos = await client.enqueue_many([strego.Task("blob", result_ttl=TTL_S) for _ in range(n)])
    ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    results = await asyncio.gather(*(client.result(i, timeout=30) for i in ids[:waited]))
    assert all(len(r) == RESULT_BYTES for r in results)
    await wait_until(lambda: processed_at_least(inspector, done + n), timeout=60)
    return done + n


async def test_memory_back_to_baseline_after_results_expire(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Thousands of 2 KiB results raise Redis memory; once their TTL passes, memory and
    the key count are back where they were (the finished ring stays at its size)."""

    async def blob(payload: Any) -> str:
        return "r" * RESULT_BYTES

    await make_server({"blob": blob}, keep_completed=KEEP, concurrency=50)
    redis = redis_broker(client).redis
    done = await run_batch(client, inspector, 0, 2 * KEEP, waited=10)  # fills the ring
    await wait_until(lambda: _no_results(client), timeout=10)
    # Memory is the whole server's (other tests' keys only ever expire meanwhile); the
    # key count is this test's prefix.
    ours = f"{redis_broker(client).config.prefix}:*"
    baseline, keys_before = await used_memory(client), await count_keys(client, ours)

    done = await run_batch(client, inspector, done, TASKS, waited=200)
    assert await result_keys(client) > TASKS // 2  # they are there while their TTL runs
    assert await used_memory(client) - baseline > TASKS // 2 * RESULT_BYTES

    await wait_until(lambda: _no_results(client), timeout=15)
    grown = await used_memory(client) - baseline
    assert grown < 256 * 1024, f"{grown} bytes still held after the results expired"
    assert await count_keys(client, ours) == keys_before
    keys = redis_broker(client).keys("default")
    assert await redis.llen(keys.finished) == KEEP
    assert await redis.exists(keys.waiters) == 0


async def _no_results(client: strego.Client) -> bool:
    return await result_keys(client) == 0
