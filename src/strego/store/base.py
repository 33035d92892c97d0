"""The history seam: clients and workers *record* events; stores decide what to keep.

History is an observer. The worker calls ``record`` for every transition and never
branches on whether a store is configured: without one it talks to ``NullHistory``.
``record`` must never block and never raise: task processing must not depend on
the history store being up.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from strego.events import TaskEvent

__all__ = ["NullHistory", "TaskHistory"]


@runtime_checkable
class TaskHistory(Protocol):
    """What the Client and Server need from a history store."""

    def record(self, event: TaskEvent) -> None:
        """Queue one event for writing. Non-blocking; never raises."""

    async def start(self) -> None:
        """Open connections and start the background writer."""

    async def aclose(self) -> None:
        """Flush what is buffered (bounded time) and close."""


class NullHistory:
    """Keeps nothing: the history of a deployment without a store."""

    def record(self, event: TaskEvent) -> None:
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
