"""Helpers for the history-store tests: event factories and a TCP proxy that can be cut."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from strego.events import TaskEvent
from strego.store.postgres import PostgresStore
from strego.task import TaskState

__all__ = ["T0", "TcpProxy", "at", "event", "new_id", "written"]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_counter = itertools.count()


def new_id(prefix: str = "T") -> str:
    """A task id unique across the session (tests share one database)."""
    return f"{prefix}{os.getpid()}-{next(_counter):06d}-{os.urandom(3).hex()}"


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``: readable event times."""
    return T0 + timedelta(seconds=seconds)


def event(
    task_id: str,
    state: TaskState | str,
    when: datetime,
    *,
    queue: str = "default",
    type: str = "email:send",
    labels: Mapping[str, str] | None = None,
    **fields: object,
) -> TaskEvent:
    """A TaskEvent; creation states get a payload and created_at unless given."""
    state = TaskState(state)
    if state in (TaskState.PENDING, TaskState.SCHEDULED):
        fields.setdefault("payload", b'{"to": "a@b.c"}')
        fields.setdefault("serializer", "json")
        fields.setdefault("created_at", when)
    return TaskEvent(
        task_id=task_id,
        queue=queue,
        type=type,
        state=state,
        at=when,
        labels=dict(labels or {}),
        **fields,  # type: ignore[arg-type]
    )


class TcpProxy:
    """Forwards a loopback port to PostgreSQL; ``cut()`` makes the database vanish.

    Cutting closes the listener and every live connection, so clients see resets
    and refused connections; ``restore()`` listens on the same port again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
        self._writers.discard(sink)


async def written(store: PostgresStore) -> None:
    """Wait until the store has written everything recorded so far (fail if it cannot)."""
    assert await store.flush(timeout=10), "the history store did not flush within 10 s"
