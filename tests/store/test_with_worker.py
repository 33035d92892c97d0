"""A real Client and Server sharing one PostgresStore: every transition reaches the table."""

from __future__ import annotations

import uuid

import pytest

import strego
from strego.store.postgres import PostgresStore
from strego.task import TaskState
from strego.testing import drain

from .pg_helpers import written

pytestmark = pytest.mark.postgres


async def test_worker_and_client_record_the_whole_lifecycle(
    pg_dsn: str, redis_url: str, prefix: str
) -> None:
    """Enqueued, retried, completed and dead-lettered tasks end as rows with timelines."""
    queue = f"hist-{uuid.uuid4().hex[:8]}"
    attempts: dict[str, int] = {}

    async def ok(payload: dict[str, str]) -> None:
        return None

    async def flaky(task: strego.Task) -> None:
        attempts[task.id] = attempts.get(task.id, 0) + 1
        if attempts[task.id] == 1:
            raise RuntimeError("first attempt fails")

    async def hopeless(payload: dict[str, str]) -> None:
        raise strego.SkipRetry("cannot work")

    store = PostgresStore(pg_dsn, flush_interval=0.01)
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="history")
    server = strego.Server(broker, queues=[queue], store=store, retry_base=0.05, retry_max=0.1)
    for task_type, handler in (("ok", ok), ("flaky", flaky), ("hopeless", hopeless)):
        server.handle(task_type, handler)
    try:
        async with strego.Client(broker, store=store) as client:
            labels = {"tenant": "acme"}
            infos = {
                name: await client.enqueue(
                    strego.Task(name, {"n": name}, queue=queue, labels=labels)
                )
                for name in ("ok", "flaky", "hopeless")
            }
            await drain(server, timeout=20)
            await written(store)

            done = await store.get(infos["ok"].id)
            assert done is not None
            assert (done.state, done.queue, done.labels) == (TaskState.COMPLETED, queue, labels)
            assert [e.state for e in done.timeline] == [
                TaskState.PENDING,
                TaskState.ACTIVE,
                TaskState.COMPLETED,
            ]
            assert done.payload is not None
            assert done.worker is not None

            retried = await store.get(infos["flaky"].id)
            assert retried is not None
            assert (retried.state, retried.retry_count) == (TaskState.COMPLETED, 1)
            assert retried.last_error is not None
            assert "first attempt fails" in retried.last_error
            assert TaskState.RETRY in [e.state for e in retried.timeline]

            dead = await store.get(infos["hopeless"].id)
            assert dead is not None
            assert dead.state == TaskState.DEAD
            assert dead.dead_reason == "skip_retry"
    finally:
        await broker.aclose()
    assert store.dropped == 0
