"""The store's life: protocol, options, start/aclose ownership, flush on close, threads."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from strego.errors import ConfigurationError
from strego.events import TaskEvent
from strego.store import PostgresStore as LazyPostgresStore
from strego.store import TaskHistory
from strego.store.postgres import PostgresStore, writer, writes
from strego.store.query import TaskFilter
from strego.task import TaskState

from .pg_helpers import at, event, new_id, written


def test_import_strego_does_not_import_psycopg() -> None:
    """`import strego` (and `import strego.store`) stays light: psycopg is not loaded."""
    code = (
        "import sys, strego, strego.store, strego.store.query;"
        "assert 'psycopg' not in sys.modules, 'psycopg imported';"
        "assert 'strego.store.postgres' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_export_and_protocol() -> None:
    """strego.store.PostgresStore is the class, and it is a TaskHistory (no I/O needed)."""
    assert LazyPostgresStore is PostgresStore
    assert isinstance(PostgresStore("dbname=unused"), TaskHistory)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"pool_size": -1},
        {"buffer_limit": 10, "batch_size": 20},
        {"flush_interval": 0},
        {"retry_max": -1.0},
    ],
)
def test_invalid_options_raise_at_construction(options: dict[str, float]) -> None:
    """Bad options fail in the constructor with ConfigurationError, not later."""
    with pytest.raises(ConfigurationError):
        PostgresStore("dbname=x", **options)  # type: ignore[arg-type]


async def test_queries_before_start_say_so() -> None:
    """A query on a store never started raises a clear RuntimeError."""
    with pytest.raises(RuntimeError, match="not started"):
        await PostgresStore("dbname=x").count()


@pytest.mark.postgres
async def test_events_recorded_before_start_are_written(pg_dsn: str) -> None:
    """record() before start() buffers; the writer writes it once started."""
    store = PostgresStore(pg_dsn, flush_interval=0.01)
    tid = new_id()
    store.record(event(tid, TaskState.PENDING, at(0)))
    async with store:
        await written(store)
        assert await store.get(tid) is not None


@pytest.mark.postgres
async def test_aclose_flushes_what_is_buffered(pg_dsn: str) -> None:
    """aclose() writes buffered events even when the next flush is far away."""
    tid = new_id()
    async with PostgresStore(pg_dsn, flush_interval=60) as store:
        await asyncio.sleep(0.05)  # the writer is now waiting out its 60 s interval
        store.record(event(tid, TaskState.PENDING, at(0)))
        store.record(event(tid, TaskState.COMPLETED, at(1)))
    assert store.buffered == 0
    assert store.dropped == 0
    async with PostgresStore(pg_dsn) as reader:
        task = await reader.get(tid)
    assert task is not None
    assert task.state == TaskState.COMPLETED


@pytest.mark.postgres
async def test_shared_store_closes_with_its_last_owner(pg_dsn: str) -> None:
    """Started by a client and a server, the store keeps working until both closed it."""
    store = PostgresStore(pg_dsn, flush_interval=0.01)
    await store.start()
    await store.start()
    await store.aclose()
    tid = new_id()
    store.record(event(tid, TaskState.PENDING, at(0)))
    await written(store)
    assert await store.get(tid) is not None
    await store.aclose()
    store.record(event(new_id(), TaskState.PENDING, at(0)))
    assert store.dropped == 1, "events after the final close are counted as dropped"


@pytest.mark.postgres
async def test_record_from_other_threads(store: PostgresStore) -> None:
    """record() is safe from threads (sync handlers, SyncClient): every event lands."""
    queue = new_id("threads-")

    def produce(worker: int) -> None:
        for i in range(200):
            store.record(event(f"{queue}-{worker}-{i}", TaskState.PENDING, at(i), queue=queue))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    await written(store)
    assert await store.count(TaskFilter(queue=queue)) == 800


@pytest.mark.postgres
async def test_closed_store_can_start_again(pg_dsn: str) -> None:
    """start() after the final aclose() brings the writer back: events land again."""
    store = PostgresStore(pg_dsn, flush_interval=0.01)
    async with store:
        pass
    tid = new_id()
    async with store:
        store.record(event(tid, TaskState.PENDING, at(0)))
        await written(store)
        assert await store.get(tid) is not None
    assert store.dropped == 0


@pytest.mark.postgres
async def test_a_trickle_is_written_in_full_batches(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events arriving during a write wait for a full batch or the interval: no trickle writes."""
    sizes: list[int] = []
    real_write = writes.write_events

    async def counting(conn: Any, events: Sequence[TaskEvent]) -> None:
        sizes.append(len(events))
        await real_write(conn, events)

    monkeypatch.setattr(writer, "write_events", counting)
    queue = new_id("trickle-")
    async with PostgresStore(pg_dsn, batch_size=100, flush_interval=60) as store:
        await asyncio.sleep(0.05)  # the writer now waits out its 60 s interval
        for n in range(300):
            store.record(event(f"{queue}-{n}", TaskState.PENDING, at(0), queue=queue))
            await asyncio.sleep(0.0005)
        await written(store)
        assert await store.count(TaskFilter(queue=queue)) == 300
    assert sizes == [100, 100, 100]
