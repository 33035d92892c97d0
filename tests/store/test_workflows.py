"""Workflows in the history store: every member's row carries its workflow id."""

from __future__ import annotations

import uuid

import pytest

import strego
from strego.store.postgres import PostgresStore

from .pg_helpers import written

pytestmark = pytest.mark.postgres


async def test_history_rows_carry_the_workflow_id(pg_dsn: str, redis_url: str, prefix: str) -> None:
    """Members' rows (created by the client, finished by the worker) hold the workflow
    id; a plain task's row holds none."""
    queue = f"wf-{uuid.uuid4().hex[:8]}"

    async def step(task: strego.Task) -> int:
        return len(task.upstream_results)

    store = PostgresStore(pg_dsn, flush_interval=0.01)
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="history")
    server = strego.Server(broker, queues=[queue], store=store)
    server.handle("step", step)
    try:
        async with server, strego.Client(broker, store=store) as client:
            info = await client.enqueue(
                strego.chain(strego.Task("step", queue=queue), strego.Task("step", queue=queue))
            )
            plain = await client.enqueue(strego.Task("step", queue=queue))
            assert await client.result(info.id, timeout=20) == 1
            await client.result(plain.id, timeout=20)
            await written(store)
            for task_id in info.task_ids:
                row = await store.get(task_id)
                assert row is not None and row.workflow_id == info.id
                assert row.state == "completed"
            row = await store.get(plain.id)
            assert row is not None and row.workflow_id is None
    finally:
        await store.aclose()
        await broker.aclose()
