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
from strego.records import attempts_started, describe_attempts
from strego.serializers import SerializerRegistry
from strego.store.query import TaskDetail
from strego.task import TaskState
from strego.ui.attempts import TimelineItem, history_timeline, redis_timeline
from strego.ui.history import HistoryReader, get_detail
from strego.ui.payload import PayloadView, payload_view

__all__ = ["TaskView", "TimelineItem", "load_task_view"]

RETRYABLE = frozenset({TaskState.DEAD, TaskState.RETRY, TaskState.SCHEDULED})
CANCELLABLE = frozenset({TaskState.PENDING, TaskState.SCHEDULED, TaskState.RETRY, TaskState.ACTIVE})


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
    result: PayloadView | None  # a completed task's kept result (Redis, else history)
    timeline: Sequence[TimelineItem]
    in_redis: bool
    in_history: bool
    workflow_id: str | None = None  # links the task page to its workflow's graph

    @property
    def attempts(self) -> int:
        """Attempts started (the n of "attempt n of m")."""
        return attempts_started(self.state, self.retry_count)

    @property
    def attempts_text(self) -> str:
        return describe_attempts(self.state, self.retry_count, self.max_retry)

    @property
    def duration_s(self) -> float | None:
        """How long the final attempt ran: as its worker measured it when recorded (the
        timeline), else from its start and end times when both are known."""
        final = self.timeline[-1] if self.timeline else None
        if final is not None and final.is_attempt and final.duration_ms is not None:
            return final.duration_ms / 1000
        if self.started_at is None or self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.started_at).total_seconds())

    @property
    def problem(self) -> str | None:
        """Which error card heads the page: ``dead`` (why it died), ``failing`` (the
        previous attempt failed, more will come) or None. A task that completed after
        failed attempts has none: its failures are in the timeline, attempt by attempt."""
        if self.state == TaskState.DEAD:
            return "dead"
        if self.state == TaskState.COMPLETED or not (self.last_error or self.traceback):
            return None
        if self.state == TaskState.CANCELLED:
            return "cancelled"
        return "failing" if self.retry_count else None

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
    if detail is None:
        timeline = redis_timeline(record)
    else:
        timeline = history_timeline(detail.timeline, record.max_retry) + _next_attempt(record)
    return TaskView(
        **(_common(record) | _from_history(record, detail)),
        payload=payload_view(record.payload_bytes, record.serializer, record.payload),
        result=_result(record, detail),
        timeline=timeline,
        in_redis=True,
        in_history=detail is not None,
    )


def _result(record: TaskRecord, detail: TaskDetail | None) -> PayloadView | None:
    """Redis's kept result; once it expired, what the history store kept."""
    if record.result_bytes is not None:
        return payload_view(record.result_bytes, record.result_serializer, record.result)
    if detail is not None and record.state == TaskState.COMPLETED:
        return _history_result(detail, SerializerRegistry())
    return None


def _history_result(detail: TaskDetail, serializers: SerializerRegistry) -> PayloadView | None:
    if detail.result is None:
        return None
    return payload_view(detail.result, detail.result_serializer, serializers=serializers)


def _from_history(record: TaskRecord, detail: TaskDetail | None) -> dict[str, Any]:
    """What Redis's record lacks and the history store kept (a finished task's start,
    worker or due time); Redis stays the truth for everything it has."""
    if detail is None:
        return {}
    finished = record.state in (TaskState.COMPLETED, TaskState.DEAD, TaskState.CANCELLED)
    kept = {"worker": detail.worker, "process_at": detail.process_at}
    if finished:
        kept["started_at"] = detail.started_at
    return {name: value for name, value in kept.items() if getattr(record, name) is None}


def _common(record: TaskRecord) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(TaskView)]
    skip = {"payload", "result", "timeline", "in_redis", "in_history"}
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
        workflow_id=detail.workflow_id,
        cancel_requested=False,
        payload=payload_view(detail.payload, detail.serializer, serializers=serializers),
        result=_history_result(detail, serializers),
        timeline=history_timeline(detail.timeline, detail.max_retry),
        in_redis=False,
        in_history=True,
    )


def _next_attempt(record: TaskRecord) -> list[TimelineItem]:
    """The attempt a waiting task will run next (the history store records only the past)."""
    if record.state not in (TaskState.PENDING, TaskState.SCHEDULED, TaskState.RETRY):
        return []
    number = attempts_started(record.state, record.retry_count) + 1
    item = TimelineItem(
        state="upcoming", at=record.process_at, attempt=number, max_attempts=record.max_attempts
    )
    return [item]
