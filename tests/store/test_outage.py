"""PostgreSQL going away: record() stays instant, the buffer is bounded, rows catch up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from strego.store.postgres import PostgresStore
from strego.store.query import TaskFilter
from strego.task import TaskState

from .pg_helpers import TcpProxy, at, event, new_id, written

pytestmark = pytest.mark.postgres


@pytest.fixture
async def proxy(pg_dsn: str) -> AsyncIterator[TcpProxy]:
    """A loopback proxy in front of the test PostgreSQL."""
    params = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    tcp = TcpProxy(str(params.get("host", "127.0.0.1")), int(str(params.get("port", 5432))))
    await tcp.start()
    yield tcp
    await tcp.cut()


def _via(pg_dsn: str, proxy: TcpProxy) -> str:
    params = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    params.update(host="127.0.0.1", port=str(proxy.port))
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def _timed_record(store: PostgresStore, task_id: str, queue: str) -> float:
    started = time.perf_counter()
    store.record(event(task_id, TaskState.PENDING, at(0), queue=queue))
    return time.perf_counter() - started


async def test_outage_buffers_drops_oldest_then_catches_up(
    pg_dsn: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL cut: record() stays instant, oldest events dropped and counted, then rows land."""
    caplog.set_level(logging.INFO, logger="strego")
    queue = new_id("outage-")
    ids = [f"{queue}-{i:03d}" for i in range(220)]
    store = PostgresStore(
        _via(pg_dsn, proxy), buffer_limit=50, batch_size=10, flush_interval=0.01, retry_max=0.2
    )
    async with store:
        store.record(event(new_id(), TaskState.PENDING, at(0), queue=queue + "-warm"))
        await written(store)  # the writer holds a live connection through the proxy

        await proxy.cut()
        durations = [_timed_record(store, task_id, queue) for task_id in ids[:200]]
        for task_id in ids[200:]:  # keep recording while the writer retries
            await asyncio.sleep(0.025)
            durations.append(_timed_record(store, task_id, queue))
        await asyncio.sleep(0.3)

        # record() never waits on the network: a blocked connect or write would take the
        # connect timeout (seconds). The median shows it is a buffer append; the maximum
        # allows a scheduler or GC pause on a loaded CI machine (seen: 7 ms) but no I/O wait.
        durations.sort()
        median, slowest = durations[len(durations) // 2], durations[-1]
        assert median < 0.001, f"record() took {median * 1000:.2f} ms (median) during the outage"
        assert slowest < 0.1, f"record() took {slowest * 1000:.2f} ms during the outage"
        assert store.buffered == 50
        assert store.dropped == 170
        assert not await store.flush(timeout=0.2), "nothing can be written while cut"
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("write failed, retrying" in m for m in messages), messages
        assert any("dropping the oldest; " in m for m in messages), messages

        await proxy.restore()
        await written(store)
        page = await store.search(TaskFilter(queue=queue), limit=100, descending=False)
        assert [task.id for task in page.items] == ids[170:], "the newest 50 survive"
        assert store.dropped == 170
    assert any("writes resumed" in r.getMessage() for r in caplog.records)


async def test_start_while_database_down_then_catches_up(
    pg_dsn: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """A store started while PostgreSQL is down still starts, buffers, and writes later."""
    caplog.set_level(logging.WARNING, logger="strego")
    await proxy.cut()
    tid = new_id()
    store = PostgresStore(_via(pg_dsn, proxy), flush_interval=0.01, retry_max=0.2)
    async with store:
        assert any("unreachable at start" in r.getMessage() for r in caplog.records)
        store.record(event(tid, TaskState.PENDING, at(0)))
        store.record(event(tid, TaskState.COMPLETED, at(1)))
        await asyncio.sleep(0.2)
        await proxy.restore()
        await written(store)
        task = await store.get(tid)
        assert task is not None
        assert task.state == TaskState.COMPLETED
