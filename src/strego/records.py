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
    "DURATION_BOUNDS_MS",
    "ClusterGauges",
    "ConsumerInfo",
    "LimitInfo",
    "LimitKeyUse",
    "LimitWait",
    "QueueGauges",
    "QueueInfo",
    "TaskRecord",
    "TaskTypeStats",
    "ThroughputPoint",
    "WorkerInfo",
    "attempts_started",
    "describe_attempts",
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
    rate_limited: int = 0  # tasks parked by a global limit (strego.limits), ever

    @property
    def size(self) -> int:
        return self.pending + self.active + self.scheduled + self.retry


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueGauges:
    """One queue's current counts, as the UI's /metrics exports them."""

    name: str
    pending: int  # not delivered yet
    active: int  # delivered, not finished (running, or handed over for reclaim)
    scheduled: int
    retry: int
    dead: int
    oldest_pending_s: float | None  # the oldest undelivered task's wait; None: none


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClusterGauges:
    """Every known queue's gauges and the number of live workers, read together."""

    queues: Sequence[QueueGauges]
    workers: int


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
    # A completed task's kept result (get_task only): decoded when its serializer is
    # known (raw bytes stay in result_bytes), the encoded value, and its serializer.
    result: Any = None
    result_bytes: bytes | None = None
    result_serializer: str | None = None
    workflow_id: str | None = None  # the workflow it is a member of (strego.chain...)

    @property
    def attempts(self) -> int:
        """Attempts started so far (see :func:`attempts_started`)."""
        return attempts_started(self.state, self.retry_count)

    @property
    def max_attempts(self) -> int:
        return self.max_retry + 1

    @property
    def duration_s(self) -> float | None:
        """How long the last attempt ran, when both its start and end are known."""
        if self.started_at is None or self.completed_at is None:
            return None
        return max(0.0, (self.completed_at - self.started_at).total_seconds())


# Upper bounds (ms) of the duration histogram buckets a worker keeps per task type; one
# more bucket counts everything slower. Fixed and shared, so histograms of different
# workers add up exactly and percentiles come out to bucket precision.
DURATION_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000,
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskTypeStats:
    """What workers did with one task type of one queue since they started.

    ``buckets[i]`` counts finished attempts (completed or failed) that ran at most
    ``DURATION_BOUNDS_MS[i]`` ms; the last one counts the slower rest.
    """

    queue: str
    type: str
    processed: int  # attempts that completed
    failed: int  # attempts that failed (retried or dead-lettered)
    buckets: tuple[int, ...] = ()

    def percentile_ms(self, fraction: float) -> int | None:
        """The bucket bound under which ``fraction`` of the attempts ran; None without
        data; past the last bound, that bound + 1 ("slower than 60 s")."""
        total = sum(self.buckets)
        if total == 0:
            return None
        wanted, seen = fraction * total, 0
        bounds = (*DURATION_BOUNDS_MS, DURATION_BOUNDS_MS[-1] + 1)
        for bound, count in zip(bounds, self.buckets, strict=False):  # a short list: 0s
            seen += count
            if seen >= wanted:
                return bound
        return DURATION_BOUNDS_MS[-1] + 1

    def __add__(self, other: TaskTypeStats) -> TaskTypeStats:
        """The same type's numbers from two workers, added (histograms bucket by bucket)."""
        size = max(len(self.buckets), len(other.buckets))
        mine = (*self.buckets, *([0] * (size - len(self.buckets))))
        theirs = (*other.buckets, *([0] * (size - len(other.buckets))))
        return dataclasses.replace(
            self,
            processed=self.processed + other.processed,
            failed=self.failed + other.failed,
            buckets=tuple(a + b for a, b in zip(mine, theirs, strict=True)),
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A live worker, from its heartbeat (refreshed every few seconds).

    ``processed``/``failed`` and ``task_types`` count since the worker started; they
    are 0/empty for workers that do not publish them.
    """

    name: str
    host: str
    pid: int
    queues: Sequence[str]
    concurrency: int
    in_flight: int
    started_at: datetime
    last_heartbeat: datetime
    processed: int = 0
    failed: int = 0
    task_types: Sequence[TaskTypeStats] = ()

    def uptime_s(self, now: datetime) -> float:
        return max(0.0, (now - self.started_at).total_seconds())


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


def attempts_started(state: TaskState, retry_count: int) -> int:
    """Attempts started so far, from the state and ``retry_count`` (failed attempts
    before the current one): the n of "attempt n of m", one vocabulary for UI and CLI."""
    if state in (TaskState.ACTIVE, TaskState.COMPLETED, TaskState.DEAD):
        return retry_count + 1
    return retry_count  # waiting for attempt retry_count + 1 (or cancelled before it)


def describe_attempts(state: TaskState, retry_count: int, max_retry: int) -> str:
    """``2 of 4, next: attempt 3``: attempts started of the most allowed, and what next."""
    started, most = attempts_started(state, retry_count), max_retry + 1
    text = f"{started} of {most}"
    if state == TaskState.ACTIVE:
        return f"{text}, attempt {started} running"
    if state in (TaskState.PENDING, TaskState.SCHEDULED, TaskState.RETRY):
        return f"{text}, not run yet" if started == 0 else f"{text}, next: attempt {started + 1}"
    if state == TaskState.COMPLETED and retry_count:
        return f"{text}, completed after {retry_count} failed"
    return text


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
        workflow_id=message.workflow_id,
        cancel_requested=bool(times.get("cancel_requested", False)),
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimitKeyUse:
    """One key of a keyed limiter (a tenant, a user...): its current use."""

    key: str
    in_use: int  # concurrency: slots held; rate: starts granted or booked in the window
    parked: int  # tasks told to come back later
    last_used: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class LimitWait:
    """A time the limiter held a task back: when, for how long, for which key."""

    at: datetime
    wait_s: float
    key: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimitInfo:
    """One global limiter (strego.RateLimit / strego.ConcurrencyLimit) as declared by
    the workers that enforce it, and its use now (summed over its keys)."""

    name: str
    kind: str  # "rate" or "concurrency"
    queue: str | None  # a queue-wide limit's queue; None: attached to task types
    limit: int
    per_s: float | None  # rate limits
    burst: int | None  # rate limits
    keyed: bool  # one limiter per key (key=...)
    in_use: int
    parked: int
    granted: int  # starts allowed, ever (counters kept a day after the last use)
    held: int  # times a task was held back (waited or parked)
    recent_waits: Sequence[LimitWait]
    keys: Sequence[LimitKeyUse]

    @property
    def description(self) -> str:
        if self.kind == "rate":
            burst = f", burst {self.burst}" if self.burst and self.burst > 1 else ""
            return f"{self.limit} per {self.per_s:g}s{burst}"
        return f"{self.limit} at once"
