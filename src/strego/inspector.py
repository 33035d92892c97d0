"""Inspector: the admin API (read and act on queues and tasks) the UI and CLI use.

All methods are async. ``queue=None`` looks in every known queue, one O(1) index
lookup per queue, pipelined. The Inspector is built on the admin seam
(:class:`strego.admin_base.QueueAdmin`); what it adds is the history store: an admin
action that changes a task's state is recorded there too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from strego.admin_base import QueueAdmin
from strego.broker.redis import RedisBroker
from strego.broker.redis.admin import RedisAdmin
from strego.envelope import TaskMessage
from strego.errors import ConfigurationError, PeriodicNotFoundError
from strego.events import TaskEvent
from strego.paging import TaskPage
from strego.periodic.base import PeriodicAdmin
from strego.periodic.info import PeriodicInfo
from strego.records import (
    ClusterGauges,
    ConsumerInfo,
    LimitInfo,
    QueueInfo,
    TaskRecord,
    ThroughputPoint,
    WorkerInfo,
)
from strego.serializers import Serializer, SerializerRegistry
from strego.store.base import TaskHistory
from strego.task import TaskInfo, TaskState
from strego.workflows.view import WorkflowView

__all__ = [
    "ConsumerInfo",
    "Inspector",
    "LimitInfo",
    "PeriodicInfo",
    "QueueInfo",
    "TaskRecord",
    "ThroughputPoint",
    "WorkerInfo",
]


class Inspector:
    """Read and manage queues, tasks, dead letters and workers.

    ``broker``: a ``RedisBroker`` (its admin side is used), or any
    :class:`~strego.admin_base.QueueAdmin`. ``store``: a started history store; admin
    retries are recorded in it. Closes neither.
    """

    def __init__(
        self,
        broker: RedisBroker | QueueAdmin,
        store: TaskHistory | None = None,
        *,
        serializers: Iterable[Serializer] = (),
    ) -> None:
        self.store = store
        self._admin: QueueAdmin
        self._periodic_admin: PeriodicAdmin | None = None
        self._broker = broker if isinstance(broker, RedisBroker) else None  # workflows
        if isinstance(broker, RedisBroker):
            self._admin = RedisAdmin(broker, SerializerRegistry(serializers))
            self._periodic_admin = broker.periodics
        else:
            self._admin = broker

    # -- reads ------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise unless Redis answers (the UI's /healthz)."""
        await self._admin.ping()

    async def known_queues(self) -> list[str]:
        """Every queue a task was ever enqueued to or a worker served, sorted."""
        return await self._admin.known_queues()

    async def group(self, queue: str) -> str:
        """The consumer group whose consumers read ``queue``."""
        return await self._admin.group(queue)

    async def queues(self) -> list[QueueInfo]:
        """Every known queue's counts (one pipelined round trip)."""
        return await self._admin.queues()

    async def queue_info(self, queue: str) -> QueueInfo:
        return await self._admin.queue_info(queue)

    async def list_tasks(
        self, queue: str, state: str, *, offset: int = 0, limit: int = 50
    ) -> list[TaskRecord]:
        """Tasks of one state: pending, active, scheduled, retry, dead or completed.

        At most 500 per call. Over the pending and active lists ``offset`` stops at 1000
        (every skipped task would be read): page with ``list_page`` and cursors.
        """
        return await self._admin.list_tasks(queue, str(state), offset=offset, limit=limit)

    async def list_page(
        self, queue: str, state: str, *, cursor: str | None = None, limit: int = 50
    ) -> TaskPage:
        """One page of one state (at most 500 rows) and the cursors of the pages around
        it: pass ``page.next_cursor`` / ``page.prev_cursor`` back, or ``"last"``. Unlike
        ``offset``, a cursor costs the same on any page of any queue (see strego.paging).
        """
        return await self._admin.list_page(queue, str(state), cursor=cursor, limit=limit)

    async def dead_letters(
        self, queue: str, *, offset: int = 0, limit: int = 50
    ) -> list[TaskRecord]:
        """Dead tasks, newest first."""
        return await self._admin.list_tasks(queue, "dead", offset=offset, limit=limit)

    async def get_task(self, task_id: str, queue: str | None = None) -> TaskRecord | None:
        return await self._admin.get_task(task_id, queue)

    async def workflow(self, workflow_id: str) -> WorkflowView | None:
        """A workflow's graph with each task's state (None: unknown or expired)."""
        return await self._workflows().read_workflow(workflow_id)

    async def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every task of the workflow not finished yet; how many were cancelled."""
        return await self._workflows().cancel_workflow(workflow_id)

    def _workflows(self) -> RedisBroker:
        if self._broker is None:
            raise ConfigurationError("workflows need an Inspector built on a RedisBroker")
        return self._broker

    async def workers(self) -> list[WorkerInfo]:
        return await self._admin.workers()

    async def gauges(self) -> ClusterGauges:
        """Every known queue's counts and oldest pending age, and how many workers are
        alive, in few round trips (the UI's /metrics)."""
        return await self._admin.gauges()

    async def consumers(self, queue: str) -> list[ConsumerInfo]:
        return await self._admin.consumers(queue)

    async def throughput(
        self, queue: str | None = None, minutes: int = 60
    ) -> list[ThroughputPoint]:
        """Processed/failed per minute, oldest first (kept for 24 h)."""
        return await self._admin.throughput(queue, minutes)

    async def redis_info(self) -> dict[str, Any]:
        return await self._admin.redis_info()

    async def limits(self) -> list[LimitInfo]:
        """Every global limiter the workers declared (strego.RateLimit,
        strego.ConcurrencyLimit): its limit, use now, parked tasks and recent waits."""
        return await self._admin.limits()

    # -- actions ----------------------------------------------------------------

    async def retry(self, task_id: str, queue: str | None = None) -> bool:
        """Run a dead, retry or scheduled task now, with its attempts reset to 0."""
        moved = await self._admin.retry(task_id, queue)
        if moved and self.store is not None:  # the history shows the revival at once
            record = await self._admin.get_task(task_id, queue)
            if record is not None:
                self.store.record(
                    _revived(
                        task_id, record.queue, record.type, datetime.now(UTC), record.max_retry
                    )
                )
        return moved

    async def retry_all_dead(
        self, queue: str, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Run now every task that is dead when the call starts, each at most once (one
        that dies again meanwhile stays dead); returns how many moved.

        ``progress`` is called with the running total after each chunk. With a history
        store, each revival is recorded, as ``retry`` does.
        """
        total = 0

        async def moved(messages: Sequence[TaskMessage]) -> None:
            nonlocal total
            total += len(messages)
            if self.store is not None:
                now = datetime.now(UTC)
                for m in messages:
                    self.store.record(_revived(m.id, m.queue, m.type, now, m.max_retry))
            if progress is not None:
                progress(total)

        return await self._admin.retry_all_dead(queue, on_moved=moved)

    async def delete(self, task_id: str, queue: str | None = None) -> bool:
        """Delete a task that is not running (cancel a running one instead)."""
        return await self._admin.delete(task_id, queue)

    async def cancel(self, task_id: str, queue: str | None = None) -> bool:
        return await self._admin.cancel(task_id, queue)

    async def purge_dead(self, queue: str) -> int:
        return await self._admin.purge_dead(queue)

    async def purge_queue(self, queue: str) -> int:
        """Delete waiting, scheduled and retry tasks; running and dead ones stay."""
        return await self._admin.purge_queue(queue)

    async def delete_queue(self, queue: str) -> int:
        """Delete a queue nobody serves, with all its tasks; how many were removed.

        Raises :class:`~strego.errors.QueueInUseError` while a live worker reads it or
        one of its tasks is running.
        """
        return await self._admin.delete_queue(queue)

    async def pause(self, queue: str) -> None:
        """Workers stop fetching from ``queue`` (within a second); enqueue still works."""
        await self._admin.pause(queue)

    async def resume(self, queue: str) -> None:
        await self._admin.resume(queue)

    async def remove_consumer(self, queue: str, consumer: str) -> bool:
        """Remove a consumer; its pending tasks are handed over for reclaim, not lost."""
        return await self._admin.remove_consumer(queue, consumer)

    # -- periodic schedules (see docs/periodic.md) ---------------------------------------

    @property
    def _periodics(self) -> PeriodicAdmin:
        if self._periodic_admin is None:
            raise ConfigurationError("periodic schedules need an Inspector built on a RedisBroker")
        return self._periodic_admin

    async def periodic(self, queue: str | None = None) -> list[PeriodicInfo]:
        """Every periodic schedule of ``queue`` (None: of every known queue), orphaned
        ones (no live worker declares them) included until deleted."""
        return await self._periodics.schedules(queue)

    async def pause_periodic(self, name: str, queue: str = "default") -> None:
        """Stop firing ``name`` (workers keep declaring it; it stays paused)."""
        if not await self._periodics.pause(name, queue):
            raise PeriodicNotFoundError(name, queue)

    async def resume_periodic(self, name: str, queue: str = "default") -> None:
        """Fire ``name`` again from its next tick (ticks missed while paused never run)."""
        if not await self._periodics.resume(name, queue):
            raise PeriodicNotFoundError(name, queue)

    async def trigger_periodic(self, name: str, queue: str = "default") -> TaskInfo:
        """Run ``name``'s task now, outside its schedule (the next tick stays)."""
        return await self._periodics.trigger(name, queue)

    async def delete_periodic(self, name: str, queue: str = "default") -> None:
        """Forget an orphaned schedule (its enqueued runs stay). A live worker that
        declares ``name`` declares it again at once: pause such a schedule instead."""
        if not await self._periodics.delete(name, queue):
            raise PeriodicNotFoundError(name, queue)


def _revived(task_id: str, queue: str, task_type: str, at: datetime, max_retry: int) -> TaskEvent:
    """The history event of an admin retry: the task is waiting again, attempts reset."""
    return TaskEvent(
        task_id=task_id,
        queue=queue,
        type=task_type,
        state=TaskState.PENDING,
        at=at,
        max_retry=max_retry,
    )
