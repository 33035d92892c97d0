"""Results under SIGKILL: stored by the ack script itself, so never half-written."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import strego
from tests.integration.test_processes import lines, spawn  # noqa: F401  (fixture)

TASKS = 300


async def completed_vs_results(broker: strego.RedisBroker, ids: list[str]) -> dict[str, str]:
    """Per task id, read atomically (MULTI): 'ok' when it is completed with its result or
    neither, else what is wrong."""
    keys = broker.keys("default")
    pipe = broker.redis.pipeline(transaction=True)
    pipe.hmget(keys.index, ids)
    for task_id in ids:
        pipe.exists(keys.result(task_id))
    records, *results = await pipe.execute()
    wrong = {}
    for task_id, record, has_result in zip(ids, records, results, strict=True):
        completed = record is not None and record[:1] == b"c"
        if completed and not has_result:
            wrong[task_id] = "completed without its result"
        elif has_result and not completed:
            wrong[task_id] = f"a result without completion ({record!r})"
    return wrong


async def test_sigkill_after_return_never_splits_result_and_completion(
    spawn: object, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Workers SIGKILLed while handlers return: a task is never completed without its
    result, nor has a result without being completed; every result arrives."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    infos = await client.enqueue_many([strego.Task("answer", n) for n in range(TASKS)])
    ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    expected = {task_id: {"n": 2 * n} for n, task_id in enumerate(ids)}
    waiters = [asyncio.create_task(client.result(i, timeout=120)) for i in ids]
    workers = [spawn(0.03), spawn(0.03)]  # type: ignore[operator]
    rng = random.Random(15)
    kills = 0
    while len(set(lines(log, "returned"))) < TASKS and kills < 40:
        await asyncio.sleep(rng.uniform(0.05, 0.2))
        assert await completed_vs_results(broker, ids) == {}
        victim = rng.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        kills += 1
        workers[victim] = spawn(0.03)  # type: ignore[operator]
    results = await asyncio.gather(*waiters)
    assert dict(zip(ids, results, strict=True)) == expected
    assert await completed_vs_results(broker, ids) == {}
    assert kills >= 5
