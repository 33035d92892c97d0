"""Retries: attempt counts, RetryAfter, SkipRetry, per-type policy, dead-letter retention."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import dead_at_least, dead_total_at_least


@pytest.mark.parametrize(("max_retry", "runs"), [(0, 1), (1, 2), (3, 4)])
async def test_attempt_counts(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    max_retry: int,
    runs: int,
) -> None:
    """max_retry counts retries: 0 → 1 run, 1 → 2 runs, 3 → 4 runs, then dead."""
    attempts: list[int] = []

    async def fail(task: strego.Task) -> None:
        attempts.append(task.retry_count)
        raise RuntimeError(f"attempt {task.retry_count}")

    info = await client.enqueue(strego.Task("f", max_retry=max_retry))
    await make_server({"f": fail}, retry_base=0.01, retry_max=0.05)
    await wait_until(lambda: dead_at_least(inspector, 1))
    assert attempts == list(range(runs))
    record = await inspector.get_task(info.id)
    assert record is not None
    assert (record.state, record.dead_reason, record.retry_count) == ("dead", "exhausted", runs - 1)
    assert record.last_error == f"RuntimeError: attempt {runs - 1}"
    assert record.traceback and "RuntimeError" in record.traceback
    stats = await inspector.queue_info("default")
    assert (stats.failed, stats.retried, stats.dead_total) == (runs, runs - 1, 1)


async def test_retry_after_sets_the_delay(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """RetryAfter(delay) schedules the retry after that delay, beyond retry_max."""
    times: list[float] = []

    async def later(task: strego.Task) -> None:
        times.append(time.monotonic())
        if task.retry_count == 0:
            raise strego.RetryAfter(0.8)

    info = await client.enqueue(strego.Task("l"))
    await make_server({"l": later}, retry_base=0.01, retry_max=0.01)
    await wait_until(lambda: len(times) == 1)
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "retry" and record.retry_count == 1
    await wait_until(lambda: len(times) == 2, timeout=5)
    assert 0.75 <= times[1] - times[0] < 2.0


async def test_skip_retry_goes_straight_to_dead(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """SkipRetry dead-letters at once, whatever max_retry says."""
    runs = 0

    async def hopeless(task: strego.Task) -> None:
        nonlocal runs
        runs += 1
        raise strego.SkipRetry("card declined")

    info = await client.enqueue(strego.Task("h", max_retry=5))
    await make_server({"h": hopeless})
    await wait_until(lambda: dead_at_least(inspector, 1))
    record = await inspector.get_task(info.id)
    assert record is not None
    assert (record.dead_reason, record.last_error, runs) == ("skip_retry", "card declined", 1)


async def test_per_type_retry_policy(client: strego.Client, redis_url: str, prefix: str) -> None:
    """A per-type policy callable chooses the delay from the task, attempt and error."""
    calls: list[tuple[int, str]] = []

    def policy(task: strego.Task, retry_number: int, exc: BaseException) -> float:
        calls.append((retry_number, type(exc).__name__))
        return 0.01

    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    server = strego.Server(broker)
    done: list[int] = []

    async def flaky(task: strego.Task) -> None:
        if task.retry_count < 2:
            raise KeyError("x")
        done.append(task.retry_count)

    server.handle("f", flaky, retry_policy=policy)
    await client.enqueue(strego.Task("f"))
    async with server:
        await wait_until(lambda: done == [2])
    await broker.aclose()
    assert calls == [(1, "KeyError"), (2, "KeyError")]


async def test_dead_letters_are_capped_by_count(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Beyond dead_letter_max the oldest dead letters are trimmed (index too)."""

    async def fail(task: strego.Task) -> None:
        raise strego.SkipRetry("no")

    infos = await client.enqueue_many([strego.Task("f") for _ in range(8)])
    await make_server({"f": fail}, dead_letter_max=5, concurrency=1)
    await wait_until(lambda: dead_total_at_least(inspector, 8))
    dead = await inspector.dead_letters("default")
    assert len(dead) == 5
    ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    # The oldest by death time go; deaths in one millisecond tie (ordered by id).
    trimmed = set(ids) - {r.id for r in dead}
    assert len(trimmed) == 3
    for task_id in trimmed:
        assert await inspector.get_task(task_id) is None  # trimmed from the index too


async def test_dead_letters_are_capped_by_age(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Dead letters older than dead_letter_ttl are trimmed when new ones arrive."""

    async def fail(task: strego.Task) -> None:
        raise strego.SkipRetry("no")

    old = await client.enqueue(strego.Task("f"))
    await make_server({"f": fail}, dead_letter_ttl=0.5)
    await wait_until(lambda: dead_total_at_least(inspector, 1))
    await asyncio.sleep(0.7)
    await client.enqueue(strego.Task("f"))
    await wait_until(lambda: dead_total_at_least(inspector, 2))
    assert [r.id for r in await inspector.dead_letters("default")] != [old.id]
    assert len(await inspector.dead_letters("default")) == 1


async def test_retry_all_of_5000_dead(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """retry_all_dead moves 5 000 dead tasks back in chunks; they then run."""
    done = 0

    async def flip(payload: dict[str, Any], task: strego.Task) -> None:
        nonlocal done
        if task.retry_count == 0 and payload.get("first", True):
            raise strego.SkipRetry("first time")
        done += 1

    await client.enqueue_many([strego.Task("f", {"i": i}) for i in range(5000)])
    server = await make_server({"f": flip}, concurrency=50)
    await wait_until(lambda: dead_at_least(inspector, 5000), timeout=60)
    await server.stop()

    async def succeed(task: strego.Task) -> None:
        nonlocal done
        done += 1

    assert await inspector.retry_all_dead("default") == 5000
    info = await inspector.queue_info("default")
    assert (info.dead, info.pending) == (0, 5000)
    await make_server({"f": succeed}, concurrency=50)
    await wait_until(lambda: done == 5000, timeout=60)
