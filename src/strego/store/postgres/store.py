"""PostgresStore: the optional task history — a write-behind observer plus read queries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from strego.durations import Duration
from strego.events import TaskEvent
from strego.store.postgres import schema, search, stats
from strego.store.postgres.config import StoreConfig
from strego.store.postgres.writer import BatchWriter
from strego.store.query import (
    QueueStats,
    SortField,
    TaskDetail,
    TaskFilter,
    TaskPage,
    ThroughputPoint,
)
from strego.task import TaskState

__all__ = ["PostgresStore"]


class PostgresStore:
    """Task history in PostgreSQL, never in the hot path.

    As a ``TaskHistory`` it is an observer: ``record(event)`` appends to a bounded
    in-memory buffer and returns; a background task writes batches of ``batch_size``
    every ``flush_interval`` seconds (sooner when a batch is full). While PostgreSQL is
    down or slow the writer retries with backoff capped at ``retry_max``; beyond
    ``buffer_limit`` waiting events the oldest are dropped and counted in ``dropped``.

    The query methods (``search``, ``count``, ``get``, ``queue_stats``, ...) serve the
    UI and users from a pool of up to ``pool_size`` connections.

    ``start()`` checks the schema and raises ``SchemaError`` unless it matches this
    strego (run ``strego migrate --postgres DSN``). It may be started by several owners
    (a Client and a Server sharing it): it closes when the last one calls ``aclose()``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 10,
        batch_size: int = 500,
        flush_interval: Duration = 0.1,
        buffer_limit: int = 100_000,
        retry_max: Duration = 5.0,
        close_timeout: Duration = 5.0,
        connect_timeout: Duration = 5.0,
    ) -> None:
        self.config = StoreConfig.build(
            dsn,
            pool_size=pool_size,
            batch_size=batch_size,
            flush_interval=flush_interval,
            buffer_limit=buffer_limit,
            retry_max=retry_max,
            close_timeout=close_timeout,
            connect_timeout=connect_timeout,
        )
        self._writer = BatchWriter(self.config)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._owners = 0

    def __repr__(self) -> str:
        return f"<PostgresStore buffered={self.buffered} dropped={self.dropped}>"

    # -- TaskHistory ------------------------------------------------------------------

    def record(self, event: TaskEvent) -> None:
        """Queue one event for writing. O(1), never blocks, never raises."""
        self._writer.put(event)

    async def start(self) -> None:
        """Check the schema (``SchemaError`` if not migrated), start the writer and pool."""
        self._owners += 1
        if self._owners > 1:
            return
        try:
            await self._writer.start()
        except BaseException:
            self._owners = 0
            raise
        self._pool = AsyncConnectionPool(
            self.config.dsn,
            min_size=0,  # a worker that only records needs no idle query connections
            max_size=self.config.pool_size,
            open=False,
            kwargs={"autocommit": True},
            configure=_configure_session,
            timeout=self.config.connect_timeout_s,
            name="strego-history",
        )
        await self._pool.open(wait=False)

    async def aclose(self) -> None:
        """Flush what is buffered (at most ``close_timeout``), then close everything."""
        if self._owners == 0:
            return
        self._owners -= 1
        if self._owners:
            return
        await self._writer.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> PostgresStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- write-behind state -------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Events thrown away: buffer overflow (oldest first) or unwritten at close."""
        return self._writer.dropped

    @property
    def rejected(self) -> int:
        """Events PostgreSQL refused even when sent alone (logged, then dropped)."""
        return self._writer.rejected

    @property
    def buffered(self) -> int:
        """Events recorded but not yet written."""
        return self._writer.buffered

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is written; False after ``timeout`` s."""
        return await self._writer.flush(timeout)

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema; returns the versions applied (none: up to date)."""
        return await schema.migrate_database(
            self.config.dsn, connect_timeout_s=self.config.connect_timeout_s
        )

    # -- queries ------------------------------------------------------------------------

    async def search(
        self,
        flt: TaskFilter | None = None,
        *,
        sort: SortField = SortField.CREATED,
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of matching tasks; pass ``page.next_cursor`` back for the next page."""
        async with self._connection() as conn:
            return await search.search_tasks(
                conn,
                flt or TaskFilter(),
                sort=sort,
                descending=descending,
                limit=limit,
                cursor=cursor,
            )

    async def count(self, flt: TaskFilter | None = None) -> int:
        """How many tasks match (exact)."""
        async with self._connection() as conn:
            return await search.count_tasks(conn, flt or TaskFilter())

    async def get(self, task_id: str) -> TaskDetail | None:
        """One task with payload, traceback and timeline; None if not (or no longer) kept."""
        async with self._connection() as conn:
            return await search.get_task(conn, task_id)

    async def state_counts(self, queue: str | None = None) -> dict[TaskState, int]:
        """Tasks per current state, in one queue or all."""
        async with self._connection() as conn:
            return await stats.state_counts(conn, queue=queue)

    async def queue_stats(
        self, *, since: timedelta | datetime = timedelta(hours=1), queue: str | None = None
    ) -> list[QueueStats]:
        """Per queue: completed/dead/cancelled since ``since``, avg and p95 durations."""
        cutoff = stats.to_cutoff(since, "since")
        async with self._connection() as conn:
            return await stats.queue_stats(conn, since=cutoff, queue=queue)

    async def throughput(
        self, *, queue: str | None = None, minutes: int = 60, until: datetime | None = None
    ) -> list[ThroughputPoint]:
        """Finished tasks per minute over the last ``minutes`` minutes (zeros included)."""
        end = stats.to_cutoff(until, "until") if until is not None else datetime.now(UTC)
        async with self._connection() as conn:
            return await stats.throughput(conn, minutes=minutes, until=end, queue=queue)

    async def delete_older_than(self, age: timedelta | datetime) -> int:
        """Delete tasks with no event since ``age`` ago (or since a datetime); count them."""
        cutoff = stats.to_cutoff(age, "age")
        async with self._connection() as conn:
            return await stats.delete_older_than(conn, cutoff)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not started: `await store.start()` first")
        async with self._pool.connection() as conn:
            yield conn


async def _configure_session(conn: psycopg.AsyncConnection[Any]) -> None:
    # Timestamps come back in UTC and date_trunc('minute') is the same for every client.
    await conn.execute("SET TIME ZONE 'UTC'")
