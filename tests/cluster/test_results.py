"""Results on one Redis, a Redis Cluster (queues on three masters) and Sentinel."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

import strego
from tests.cluster.conftest import ServerFactory
from tests.conftest import wait_until
from tests.integration.probes import redis_broker

pytestmark = pytest.mark.cluster


async def test_results_from_every_master(
    client: strego.Client, make_server: ServerFactory, queues: list[str]
) -> None:
    """Waiters of tasks on three masters share one subscription and all get answers:
    values, failures and cancellations, also for results that landed before."""

    async def double(payload: int) -> int:
        return payload * 2

    async def fail(payload: Any) -> None:
        raise strego.SkipRetry("no")

    await make_server({"double": double, "fail": fail}, queues=queues)
    infos = await client.enqueue_many(
        [strego.Task("double", n, queue=queues[n % 3]) for n in range(60)]
    )
    ids = [i.id for i in infos if isinstance(i, strego.TaskInfo)]
    results = await asyncio.gather(*(client.result(i, timeout=20) for i in ids))
    assert results == [2 * n for n in range(60)]
    assert await client.result(ids[0], timeout=1) == 0  # landed before: at once
    for queue in queues:
        dead = await client.enqueue(strego.Task("fail", queue=queue))
        with pytest.raises(strego.TaskFailedError):
            await client.result(dead.id, timeout=20)
        later = await client.enqueue(strego.Task("double", 1, queue=queue, process_in=600))
        waiting = asyncio.create_task(client.result(later.id, timeout=20))
        # The waiter registered (so the cancel is pushed to it, not found on a first look).
        broker = redis_broker(client)
        registered = partial(broker.redis.zscore, broker.keys(queue).waiters, later.id)
        await wait_until(registered, timeout=10)
        assert await client.cancel(later.id)
        with pytest.raises(strego.TaskCancelledError):
            await waiting
    with pytest.raises(strego.TaskNotFoundError):
        await client.result("unknown-everywhere")
