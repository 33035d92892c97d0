"""The admin seam: what the Inspector (and so the UI and CLI) needs from a broker.

Two narrow protocols, reads and actions, that the Redis adapter
(``strego.broker.redis.admin.RedisAdmin``) implements. The Inspector adds what is not
the broker's business (recording admin actions in the history store); the UI and the
CLI talk to the Inspector only, never to the broker behind it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from strego.envelope import TaskMessage
from strego.paging import TaskPage
from strego.records import (
    ClusterGauges,
    ConsumerInfo,
    LimitInfo,
    QueueInfo,
    TaskRecord,
    ThroughputPoint,
    WorkerInfo,
)

__all__ = ["QueueActions", "QueueAdmin", "QueueReads"]


class QueueReads(Protocol):
    """Read-only views of queues, tasks and workers."""

    async def ping(self) -> None:
        """Raise unless the broker answers (a health check)."""

    async def known_queues(self) -> list[str]:
        """Every queue a task was ever enqueued to or a worker served, sorted."""

    async def group(self, queue: str) -> str:
        """The consumer group whose consumers read ``queue``."""

    async def queues(self) -> list[QueueInfo]:
        """Every known queue's counts, read in one round trip."""

    async def queue_info(self, queue: str) -> QueueInfo: ...

    async def list_tasks(
        self, queue: str, state: str, *, offset: int = 0, limit: int = 50
    ) -> list[TaskRecord]: ...

    async def list_page(
        self, queue: str, state: str, *, cursor: str | None = None, limit: int = 50
    ) -> TaskPage:
        """One page and its neighbours' cursors (see :mod:`strego.paging`)."""

    async def get_task(self, task_id: str, queue: str | None = None) -> TaskRecord | None: ...

    async def workers(self) -> list[WorkerInfo]: ...

    async def gauges(self) -> ClusterGauges:
        """Every known queue's counts and oldest pending age, and the live workers:
        cheap enough to export every 15 s with thousands of queues."""

    async def consumers(self, queue: str) -> list[ConsumerInfo]: ...

    async def throughput(
        self, queue: str | None = None, minutes: int = 60
    ) -> list[ThroughputPoint]: ...

    async def limits(self) -> list[LimitInfo]:
        """Every declared global limiter and its use now (strego.limits)."""

    async def redis_info(self) -> dict[str, Any]: ...


class QueueActions(Protocol):
    """Changes an operator makes; each returns what it changed."""

    async def retry(self, task_id: str, queue: str | None = None) -> bool: ...

    async def retry_all_dead(
        self,
        queue: str,
        *,
        on_moved: Callable[[Sequence[TaskMessage]], Awaitable[None]] | None = None,
    ) -> int:
        """Requeue the tasks dead when the call starts, each at most once; ``on_moved``
        is awaited with each chunk's moved tasks."""

    async def delete(self, task_id: str, queue: str | None = None) -> bool: ...

    async def cancel(self, task_id: str, queue: str | None = None) -> bool: ...

    async def purge_dead(self, queue: str) -> int: ...

    async def purge_queue(self, queue: str) -> int: ...

    async def delete_queue(self, queue: str) -> int: ...

    async def pause(self, queue: str) -> None: ...

    async def resume(self, queue: str) -> None: ...

    async def remove_consumer(self, queue: str, consumer: str) -> bool: ...


class QueueAdmin(QueueReads, QueueActions, Protocol):
    """Both halves: what ``strego.Inspector`` is built on."""
