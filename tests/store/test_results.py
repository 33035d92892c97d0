"""Results in the history store: the completed row keeps the task's return value."""

from __future__ import annotations

import uuid

import pytest

import strego
from strego.store.postgres import PostgresStore
from strego.testing import drain

from .pg_helpers import written

pytestmark = pytest.mark.postgres


async def test_history_row_keeps_the_result(pg_dsn: str, redis_url: str, prefix: str) -> None:
    """A completed task's row holds its encoded result and serializer; a None result,
    a dead task and result_ttl=0 leave both empty."""
    queue = f"res-{uuid.uuid4().hex[:8]}"

    async def value(payload: dict[str, int]) -> dict[str, int] | None:
        return payload or None

    async def hopeless(payload: object) -> int:
        raise strego.SkipRetry("no")

    store = PostgresStore(pg_dsn, flush_interval=0.01)
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="history")
    server = strego.Server(broker, queues=[queue], store=store)
    server.handle("value", value)
    server.handle("hopeless", hopeless)
    try:
        async with strego.Client(broker, store=store) as client:
            kept = await client.enqueue(strego.Task("value", {"n": 1}, queue=queue))
            empty = await client.enqueue(strego.Task("value", {}, queue=queue))
            unkept = await client.enqueue(strego.Task("value", {"n": 2}, queue=queue, result_ttl=0))
            dead = await client.enqueue(strego.Task("hopeless", queue=queue))
            await drain(server, timeout=20)
            await written(store)
            row = await store.get(kept.id)
            assert row is not None
            assert (row.result, row.result_serializer) == (b'{"n":1}', "json")
            for info in (empty, unkept, dead):
                row = await store.get(info.id)
                assert row is not None
                assert (row.result, row.result_serializer) == (None, None)
    finally:
        await store.aclose()
        await broker.aclose()
