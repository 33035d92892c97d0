"""View models: what each page shows, built from the Inspector (and the history store).

Routes stay thin: they parse the request, call one function here, render the result.
Independent reads are issued concurrently so a page costs one round of Redis trips.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from strego.inspector import ConsumerInfo, Inspector, QueueInfo, TaskRecord, WorkerInfo
from strego.paging import TaskPage
from strego.records import TaskTypeStats
from strego.ui.charts import RANGES, BarChart, throughput_charts

__all__ = [
    "STATES",
    "DashboardView",
    "DeadView",
    "Page",
    "QueueView",
    "Totals",
    "WorkersView",
    "all_queues",
    "dashboard",
    "dead_view",
    "queue_view",
    "served_queues",
    "totals",
    "type_stats",
    "workers_view",
]

STATES = ("pending", "active", "scheduled", "retry", "dead", "completed")
STREAM_STATES = ("pending", "active")  # paged by stream position, not by rank


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Counts summed over every queue."""

    queues: int = 0
    paused: int = 0
    pending: int = 0
    active: int = 0
    scheduled: int = 0
    retry: int = 0
    dead: int = 0
    completed: int = 0
    processed: int = 0
    failed: int = 0


def type_stats(workers: Sequence[WorkerInfo], queue: str) -> list[TaskTypeStats]:
    """Each task type's numbers in ``queue``, added up over ``workers``."""
    summed: dict[str, TaskTypeStats] = {}
    for worker in workers:
        for stats in worker.task_types:
            if stats.queue == queue:
                known = summed.get(stats.type)
                summed[stats.type] = stats if known is None else known + stats
    return sorted(summed.values(), key=lambda s: (-(s.processed + s.failed), s.type))


def served_queues(workers: Sequence[WorkerInfo]) -> frozenset[str]:
    """Queues some live worker reads: any other queue's tasks wait for nobody."""
    return frozenset(q for w in workers for q in w.queues)


async def all_queues(inspector: Inspector) -> list[QueueInfo]:
    """Every known queue's counts (the Inspector reads them in one round trip)."""
    return await inspector.queues()


def totals(queues: Sequence[QueueInfo]) -> Totals:
    def total(name: str) -> int:
        return sum(int(getattr(q, name)) for q in queues)

    return Totals(
        queues=len(queues),
        paused=sum(1 for q in queues if q.paused),
        **{name: total(name) for name in (*STATES, "processed", "failed")},
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DashboardView:
    queues: list[QueueInfo]
    totals: Totals
    processed_chart: BarChart
    failed_chart: BarChart
    range_key: str
    range_label: str
    redis: dict[str, Any]
    workers: list[WorkerInfo]

    @property
    def served(self) -> frozenset[str]:
        return served_queues(self.workers)


async def dashboard(inspector: Inspector, range_key: str) -> DashboardView:
    """Totals, per-queue counts, throughput charts, Redis and worker summary."""
    if range_key not in RANGES:
        range_key = "1h"
    minutes, bucket, label = RANGES[range_key]
    queues, points, redis, workers = await asyncio.gather(
        all_queues(inspector),
        inspector.throughput(minutes=minutes),
        inspector.redis_info(),
        inspector.workers(),
    )
    processed, failed = throughput_charts(points, bucket)
    return DashboardView(
        queues=queues,
        totals=totals(queues),
        processed_chart=processed,
        failed_chart=failed,
        range_key=range_key,
        range_label=label,
        redis=redis,
        workers=workers,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """Where one page of ``size`` rows sits among ``total``, as cursor links.

    The pager links to the first page, the neighbours (``prev``/``next`` cursors) and the
    last page; each costs Redis the same, wherever it is (see strego.paging).
    """

    size: int
    total: int
    shown: int
    cursor: str | None = None
    next: str | None = None
    prev: str | None = None
    first_row: int | None = None  # 1-based, when the state has ranks
    has_last: bool = True  # the active list pages forward only

    @property
    def has_prev(self) -> bool:
        return self.cursor is not None

    @property
    def has_next(self) -> bool:
        return self.next is not None

    @property
    def last_row(self) -> int | None:
        return None if self.first_row is None else self.first_row + self.shown - 1


async def task_page(
    inspector: Inspector, queue: str, state: str, offset: int, cursor: str | None, limit: int
) -> TaskPage:
    """A page by cursor, or by ``offset`` (the older API: over a sorted set it becomes a
    rank cursor; over a stream it is capped, and the page has no cursors)."""
    if cursor is None and offset:
        if state not in STREAM_STATES:
            cursor = f"r{offset}"
        else:
            records = await inspector.list_tasks(queue, state, offset=offset, limit=limit)
            return TaskPage(records=records)
    return await inspector.list_page(queue, state, cursor=cursor, limit=limit)


def state_count(info: QueueInfo, state: str) -> int:
    return int(getattr(info, state))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    info: QueueInfo
    state: str
    tasks: list[TaskRecord]
    page: Page
    readers: list[WorkerInfo]  # live workers that read this queue (none: a warning)

    @property
    def task_types(self) -> list[TaskTypeStats]:
        """Per task type of this queue, summed over its live readers, busiest first."""
        return type_stats(self.readers, self.info.name)


async def queue_view(
    inspector: Inspector, queue: str, state: str, cursor: str | None, size: int
) -> QueueView:
    """One queue's counts, its live readers and one page of its tasks in ``state``.

    A cursor that does not fit (edited by hand, or the state changed under it) shows
    the first page rather than an error.
    """
    info, workers = await asyncio.gather(inspector.queue_info(queue), inspector.workers())
    try:
        found = await inspector.list_page(queue, state, cursor=cursor, limit=size)
    except ValueError:
        cursor = None
        found = await inspector.list_page(queue, state, limit=size)
    page = Page(
        size=size,
        total=state_count(info, state),
        shown=len(found.records),
        cursor=cursor,
        next=found.next_cursor,
        prev=found.prev_cursor,
        first_row=found.first_row,
        has_last=state != "active",
    )
    readers = [w for w in workers if queue in w.queues]
    return QueueView(info=info, state=state, tasks=found.records, page=page, readers=readers)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadView:
    """Dead letters: every queue's dead count, and one page of the selected queue."""

    queues: list[QueueInfo]
    selected: QueueView | None


async def dead_view(
    inspector: Inspector, queue: str | None, cursor: str | None, size: int
) -> DeadView:
    queues = await all_queues(inspector)
    if queue is None:
        with_dead = [q for q in queues if q.dead]
        queue = with_dead[0].name if with_dead else (queues[0].name if queues else None)
    selected = None
    if queue is not None:
        selected = await queue_view(inspector, queue, "dead", cursor, size)
    return DeadView(queues=queues, selected=selected)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroup:
    queue: str
    group: str
    consumers: list[ConsumerInfo]

    @property
    def dead(self) -> int:
        return sum(1 for c in self.consumers if not c.alive)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkersView:
    workers: list[WorkerInfo]
    groups: list[ConsumerGroup]


async def workers_view(inspector: Inspector) -> WorkersView:
    """Live servers and, per queue, the consumers of the group (alive or not)."""
    workers, names = await asyncio.gather(inspector.workers(), inspector.known_queues())
    consumers = await asyncio.gather(*(inspector.consumers(q) for q in names))
    group_names = await asyncio.gather(*(inspector.group(q) for q in names))
    groups = [
        ConsumerGroup(queue=q, group=g, consumers=c)
        for q, g, c in zip(names, group_names, consumers, strict=True)
    ]
    workers.sort(key=lambda w: (w.host, w.pid, w.name))
    return WorkersView(workers=workers, groups=groups)
