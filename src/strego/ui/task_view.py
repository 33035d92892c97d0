"""One task's detail page: Redis's live record merged with what the history store kept.

Redis is the truth for the current state (and the only source without a store); the
history store adds the full timeline and keeps tasks Redis has already forgotten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from strego.inspector import Inspector, TaskRecord
from strego.serializers import SerializerRegistry
from strego.store.query import TaskDetail
from strego.task import TaskState
from strego.ui.history import HistoryReader, get_detail
from strego.ui.payload import PayloadView, payload_view

__all__ = ["TaskView", "TimelineItem", "load_task_view"]

RETRYABLE = frozenset({TaskState.DEAD, TaskState.RETRY, TaskState.SCHEDULED})
CANCELLABLE = frozenset({TaskState.PENDING, TaskState.SCHEDULED, TaskState.RETRY, TaskState.ACTIVE})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TimelineItem:
    state: str
    at: datetime
    retry_count: int | None = None
    worker: str | None = None
    error: str | None = None
    dead_reason: str | None = None
    duration_ms: float | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """Everything the task page shows; ``in_redis`` says whether actions can apply."""

    id: str
    type: str
    queue: str
    state: TaskState
    retry_count: int
    max_retry: int
    priority: int
    labels: Mapping[str, str]
    timeout: float | None
    unique_key: str | None
    last_error: str | None
    traceback: str | None
    dead_reason: str | None
    created_at: datetime | None
    process_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    worker: str | None
    cancel_requested: bool
    payload: PayloadView
    timeline: Sequence[TimelineItem]
    in_redis: bool
    in_history: bool

    @property
    def can_retry(self) -> bool:
        return self.in_redis and self.state in RETRYABLE

    @property
    def can_delete(self) -> bool:
        return self.in_redis and self.state != TaskState.ACTIVE

    @property
    def can_cancel(self) -> bool:
        return self.in_redis and self.state in CANCELLABLE and not self.cancel_requested


async def load_task_view(
    inspector: Inspector,
    history: HistoryReader | None,
    task_id: str,
    queue: str | None,
    serializers: SerializerRegistry,
) -> TaskView | None:
    record = await inspector.get_task(task_id, queue)
    detail = await get_detail(history, task_id)
    if record is not None:
        return _from_record(record, detail)
    if detail is not None and (queue is None or detail.queue == queue):
        return _from_detail(detail, serializers)
    return None


def _from_record(record: TaskRecord, detail: TaskDetail | None) -> TaskView:
    timeline = _history_timeline(detail) if detail else _redis_timeline(record)
    return TaskView(
        **_common(record),
        payload=payload_view(record.payload_bytes, record.serializer, record.payload),
        timeline=timeline,
        in_redis=True,
        in_history=detail is not None,
    )


def _common(record: TaskRecord) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(TaskView)]
    skip = {"payload", "timeline", "in_redis", "in_history"}
    return {n: getattr(record, n) for n in names if n not in skip}


def _from_detail(detail: TaskDetail, serializers: SerializerRegistry) -> TaskView:
    return TaskView(
        id=detail.id,
        type=detail.type,
        queue=detail.queue,
        state=detail.state,
        retry_count=detail.retry_count,
        max_retry=detail.max_retry,
        priority=detail.priority,
        labels=detail.labels,
        timeout=None,
        unique_key=None,
        last_error=detail.last_error,
        traceback=detail.traceback,
        dead_reason=detail.dead_reason,
        created_at=detail.created_at,
        process_at=detail.process_at,
        started_at=detail.started_at,
        completed_at=detail.finished_at,
        worker=detail.worker,
        cancel_requested=False,
        payload=payload_view(detail.payload, detail.serializer, serializers=serializers),
        timeline=_history_timeline(detail),
        in_redis=False,
        in_history=True,
    )


def _history_timeline(detail: TaskDetail) -> list[TimelineItem]:
    return [
        TimelineItem(
            state=str(entry.state),
            at=entry.at,
            retry_count=entry.retry_count,
            worker=entry.worker,
            error=entry.error,
            dead_reason=entry.dead_reason,
            duration_ms=entry.duration_ms,
        )
        for entry in detail.timeline
    ]


def _redis_timeline(record: TaskRecord) -> list[TimelineItem]:
    """What Redis alone knows: created, due, started, finished (no per-attempt history)."""
    items: list[TimelineItem] = []
    if record.created_at:
        items.append(TimelineItem(state="created", at=record.created_at))
    if record.process_at and record.state in (TaskState.SCHEDULED, TaskState.RETRY):
        items.append(TimelineItem(state="due", at=record.process_at))
    if record.started_at:
        items.append(TimelineItem(state="started", at=record.started_at, worker=record.worker))
    if record.completed_at:
        items.append(
            TimelineItem(
                state=str(record.state),
                at=record.completed_at,
                retry_count=record.retry_count,
                worker=record.worker if record.state != TaskState.DEAD else None,
                error=record.last_error if record.state == TaskState.DEAD else None,
                dead_reason=record.dead_reason,
            )
        )
    return sorted(items, key=lambda item: item.at)
