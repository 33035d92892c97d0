"""Killing workers inside the retry path never leaves a task in two places, or none."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

import strego
from strego.envelope import decode
from tests.conftest import wait_until
from tests.integration.test_processes import lines, spawn  # noqa: F401  (fixture)

KILLS = 60 if os.environ.get("STREGO_SOAK") == "1" else 12  # scripts/soak: the long run


async def snapshot(broker: strego.RedisBroker) -> Counter[str]:
    """Every place each task id lives, read atomically (MULTI) across the queue's keys."""
    keys = broker.keys("default")
    pipe = broker.redis.pipeline(transaction=True)
    for stream in keys.streams:
        pipe.xrange(stream)
    for zset in (keys.scheduled, keys.retry, keys.dead):
        pipe.zrange(zset, 0, -1)
    pipe.lrange(keys.finished, 0, -1)
    replies = await pipe.execute()
    places: Counter[str] = Counter()
    for entries in replies[: len(keys.streams)]:
        for _entry_id, fields in entries:
            places[decode(fields[b"d"]).id] += 1
    for members in replies[len(keys.streams) :]:  # scheduled, retry, dead, finished
        for member in members:
            places[member.decode()] += 1
    return places


@pytest.mark.timeout(120 + KILLS * 5)
async def test_sigkill_in_retry_path_keeps_one_place_per_task(
    spawn: object, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Under repeated SIGKILL while tasks fail and retry, each task is in exactly one place."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    infos = await client.enqueue_many([strego.Task("flaky") for _ in range(200)])
    ids = {i.id for i in infos if isinstance(i, strego.TaskInfo)}
    workers = [spawn(0.0), spawn(0.0)]  # type: ignore[operator]
    rng = random.Random(3)
    for _ in range(KILLS):
        await asyncio.sleep(0.25)
        places = await snapshot(broker)
        misplaced = {i: places[i] for i in ids if places[i] != 1}
        assert not misplaced, f"tasks in two places or none: {misplaced}"
        victim = rng.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        workers[victim] = spawn(0.0)  # type: ignore[operator]
    await wait_until(lambda: ids <= set(lines(log, "done")), timeout=60)
    assert set(lines(log, "done")) == ids
