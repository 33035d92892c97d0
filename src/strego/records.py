"""Read models returned by the Inspector (and rendered by the UI and CLI)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from strego.envelope import TaskMessage
from strego.serializers import SerializerRegistry
from strego.task import TaskState

__all__ = [
    "ConsumerInfo",
    "QueueInfo",
    "TaskRecord",
    "ThroughputPoint",
    "WorkerInfo",
    "record_from_message",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueInfo:
    name: str
    pending: int  # waiting in the stream, not yet delivered
    active: int  # delivered to a worker, not yet finished
    scheduled: int
    retry: int
    dead: int
    completed: int  # recently finished records kept (keep_completed)
    paused: bool
    enqueued: int  # counters since the queue was created
    processed: int
    failed: int
    retried: int
    dead_total: int
    cancelled: int
    oldest_pending_s: float | None  # age of the oldest waiting task: queue latency

    @property
    def size(self) -> int:
        return self.pending + self.active + self.scheduled + self.retry


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    id: str
    type: str
    queue: str
    state: TaskState
    payload: Any  # decoded when the serializer is known, else None
    payload_bytes: bytes
    serializer: str
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
    cancel_requested: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    name: str
    host: str
    pid: int
    queues: Sequence[str]
    concurrency: int
    in_flight: int
    started_at: datetime
    last_heartbeat: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerInfo:
    name: str
    pending: int
    idle_s: float
    alive: bool  # a registered worker with a recent heartbeat has this name


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ThroughputPoint:
    minute: datetime
    processed: int
    failed: int


def ms_to_datetime(ms: int | float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def record_from_message(
    message: TaskMessage,
    state: TaskState,
    serializers: SerializerRegistry,
    **times: Any,
) -> TaskRecord:
    payload: Any = None
    serializer = serializers.get(message.serializer)
    if serializer is not None and message.serializer != "raw":
        try:
            payload = serializer.loads(message.payload)
        except Exception:  # shown raw: an undecodable payload must not break a listing
            payload = None
    return TaskRecord(
        id=message.id,
        type=message.type,
        queue=message.queue,
        state=state,
        payload=payload,
        payload_bytes=message.payload,
        serializer=message.serializer,
        retry_count=message.retry_count,
        max_retry=message.max_retry,
        priority=message.priority,
        labels=dict(message.labels),
        timeout=message.timeout_s,
        unique_key=message.unique_key,
        last_error=message.last_error,
        traceback=message.traceback,
        dead_reason=message.dead_reason,
        created_at=ms_to_datetime(message.created_ms),
        process_at=times.get("process_at"),
        started_at=times.get("started_at"),
        completed_at=times.get("completed_at") or ms_to_datetime(message.failed_ms),
        worker=times.get("worker"),
        cancel_requested=bool(times.get("cancel_requested", False)),
    )
