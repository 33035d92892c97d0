"""The write-behind buffer: ``put`` is what ``record`` costs; one task writes batches.

Task processing must never wait for, or fail because of, the history database. So
``put`` only appends to a bounded deque and, when a batch is ready, nudges the
writer. The writer owns one connection (separate from the query pool), writes
batches of ``batch_size``, retries with capped backoff while PostgreSQL is down or
slow, and when the buffer overflows it drops the *oldest* events, counting them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

import psycopg

from strego.errors import SchemaError
from strego.events import TaskEvent
from strego.store.postgres.config import StoreConfig
from strego.store.postgres.schema import check_schema
from strego.store.postgres.writes import write_events

__all__ = ["BatchWriter"]

log = logging.getLogger("strego")

# Errors that say "the database is unreachable, slow or not ready": keep the batch
# and retry later. Anything else means one event cannot be written (see _write_each).
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, OSError, TimeoutError, SchemaError)
_FIRST_RETRY_S = 0.05
_LOG_EVERY_S = 30.0


class BatchWriter:
    """Buffers task events in memory and writes them in batches from one asyncio task.

    ``dropped`` counts events thrown away because the buffer was full (oldest first)
    or still unwritten when ``stop`` ran out of time; ``rejected`` counts events
    PostgreSQL refused even when sent alone.
    """

    def __init__(self, config: StoreConfig) -> None:
        self._config = config
        self._buffer: collections.deque[TaskEvent] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._drained = asyncio.Event()
        self._wake_requested = False
        self._stopping = False
        self._closed = False
        self._in_flight: list[TaskEvent] = []
        self._failing_since: float | None = None
        self._next_failure_log = 0.0
        self._next_drop_log = 0.0
        self.dropped = 0
        self.rejected = 0

    @property
    def buffered(self) -> int:
        """Events waiting to be written, including the batch being written."""
        return len(self._buffer) + len(self._in_flight)

    # -- the hot path -------------------------------------------------------------

    def put(self, event: TaskEvent) -> None:
        """Append one event; O(1), never blocks, never raises (may run in any thread)."""
        if self._closed:
            self.dropped += 1
            return
        buffer = self._buffer
        if len(buffer) >= self._config.buffer_limit:
            with contextlib.suppress(IndexError):
                buffer.popleft()
                self.dropped += 1
            self._warn_dropped()
        buffer.append(event)
        if len(buffer) >= self._config.batch_size and not self._wake_requested:
            self._wake_requested = True
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(self._wake.set)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and check the schema (SchemaError), then start the writer task.

        An unreachable database is not fatal: the history is optional, so a worker
        still starts, buffers, and the writer keeps trying to connect.
        """
        self._loop = asyncio.get_running_loop()
        self._stopping = self._closed = False  # a closed store may be started again
        self._stop.clear()
        try:
            await self._connection()
        except SchemaError:
            raise
        except _TRANSIENT as exc:
            log.warning("history store unreachable at start, buffering until it is up: %s", exc)
        self._task = self._loop.create_task(self._run(), name="strego-history-writer")

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every event put before this call is written; False on timeout."""
        if not self.buffered:
            return True
        self._drained.clear()
        self._wake.set()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Write what is buffered (for at most ``close_timeout``), then disconnect."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, self._config.close_timeout_s)
        self._closed = True
        lost = len(self._buffer)
        if lost:
            self._buffer.clear()
            self.dropped += lost
            log.warning("history store closed with %d events unwritten (dropped)", lost)
        await self._disconnect()

    # -- the writer task --------------------------------------------------------------

    async def _run(self) -> None:
        delay = _FIRST_RETRY_S
        while not (self._stopping and not self._buffer):
            try:
                written = await self._drain()
            except Exception:  # a bug must not end history for the life of the process
                log.exception("history writer failed unexpectedly; retrying")
                written = False
            if written:
                delay = _FIRST_RETRY_S
                if not self._buffer:
                    self._drained.set()
                if not self._stopping:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._config.flush_interval_s)
            else:
                await self._backoff(delay)
                delay = min(delay * 2, self._config.retry_max_s)

    async def _drain(self) -> bool:
        """Write what is due; False if the database failed.

        Due: one batch (the interval is up, or a batch is full), then every further
        full batch. Events arriving meanwhile wait for the next interval unless
        someone waits for them (``flush``, ``stop``): writing each trickle as it comes
        made batches of a few dozen events, and PostgreSQL pays per statement and
        cannot write a task's "active" and outcome as one row when they are split.
        """
        self._wake.clear()
        self._wake_requested = False
        first = True
        while self._buffer and (first or self._must_write_all()):
            first = False
            batch = self._in_flight = self._take(self._config.batch_size)
            try:
                await self._write(batch)
            except _TRANSIENT as exc:
                self._requeue(batch)
                self._report_failure(exc)
                await self._disconnect()
                return False
            except asyncio.CancelledError:
                self._requeue(batch)  # counted as dropped by stop(), not silently lost
                raise
            except Exception as exc:  # some event cannot be written: isolate it
                log.warning("history batch refused (%s); writing its events one by one", exc)
                if not await self._write_each(batch):
                    return False
            finally:
                self._in_flight = []
            self._report_recovery()
        return True

    def _must_write_all(self) -> bool:
        return (
            len(self._buffer) >= self._config.batch_size
            or self._stopping
            or not self._drained.is_set()  # flush() is waiting, or nothing written yet
        )

    async def _write(self, batch: list[TaskEvent]) -> None:
        conn = await self._connection()
        async with asyncio.timeout(self._config.write_timeout_s):
            await write_events(conn, batch)

    async def _write_each(self, batch: list[TaskEvent]) -> bool:
        for index, event in enumerate(batch):
            try:
                await self._write([event])
            except _TRANSIENT as exc:
                self._requeue(batch[index:])
                self._report_failure(exc)
                await self._disconnect()
                return False
            except Exception as exc:
                self.rejected += 1
                log.error("history event for task %s rejected, dropped: %s", event.task_id, exc)
        return True

    async def _backoff(self, delay_s: float) -> None:
        if self._stopping:  # closing: keep trying until close_timeout, but not hot
            await asyncio.sleep(min(delay_s, 0.25))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay_s)

    # -- buffer helpers ---------------------------------------------------------------

    def _take(self, count: int) -> list[TaskEvent]:
        batch: list[TaskEvent] = []
        with contextlib.suppress(IndexError):  # put() may drop the oldest concurrently
            while len(batch) < count:
                batch.append(self._buffer.popleft())
        return batch

    def _requeue(self, batch: list[TaskEvent]) -> None:
        # The batch is the oldest data: back at the front, then trim the overflow.
        self._buffer.extendleft(reversed(batch))
        excess = len(self._buffer) - self._config.buffer_limit
        if excess > 0:
            with contextlib.suppress(IndexError):
                for _ in range(excess):
                    self._buffer.popleft()
                    self.dropped += 1
            self._warn_dropped()

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now >= self._next_drop_log:
            self._next_drop_log = now + _LOG_EVERY_S
            log.warning(
                "history buffer full (%d events): dropping the oldest; %d dropped so far",
                self._config.buffer_limit,
                self.dropped,
            )

    # -- connection -------------------------------------------------------------------

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        timeout_s = self._config.connect_timeout_s
        async with asyncio.timeout(timeout_s):
            conn = await psycopg.AsyncConnection.connect(
                self._config.dsn, autocommit=True, connect_timeout=max(1, round(timeout_s))
            )
            try:
                await check_schema(conn)
            except BaseException:
                await conn.close()
                raise
        self._conn = conn
        return conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def _report_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now >= self._next_failure_log:
            self._next_failure_log = now + _LOG_EVERY_S
            level = logging.ERROR if isinstance(exc, SchemaError) else logging.WARNING
            log.log(
                level,
                "history store write failed, retrying with backoff (%d events buffered): %s",
                len(self._buffer),
                exc,
            )

    def _report_recovery(self) -> None:
        if self._failing_since is not None:
            down_s = time.monotonic() - self._failing_since
            self._failing_since = None
            self._next_failure_log = 0.0
            log.info("history store writes resumed after %.1fs", down_s)
