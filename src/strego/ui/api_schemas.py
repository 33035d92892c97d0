"""The JSON API's shapes as pydantic models: replies, query parameters, request bodies.

``openapi.py`` builds ``/api/openapi.json`` from these models and the route table (each
API route names its :class:`Operation`), and the handlers parse their query strings
with the query models, so the documented bounds are the enforced ones. The API tests
validate every reply against the document: a field added on one side only fails.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from strego.task import TaskState

__all__ = [
    "LISTABLE",
    "BulkReply",
    "BulkRequest",
    "ConsumerList",
    "ConsumerRemoved",
    "CsrfReply",
    "ErrorReply",
    "HistoryPage",
    "HistoryQuery",
    "Operation",
    "Paging",
    "QueueActionReply",
    "QueueDetail",
    "QueueList",
    "RedisInfo",
    "TaskActionReply",
    "TaskDetail",
    "TaskList",
    "TaskListQuery",
    "TaskLookup",
    "Throughput",
    "ThroughputQuery",
    "WorkerList",
]

LISTABLE = ("pending", "active", "scheduled", "retry", "dead", "completed")
Listable = Literal["pending", "active", "scheduled", "retry", "dead", "completed"]
Time = datetime | None
Labels = dict[str, str]


class Reply(BaseModel):
    """A reply body: every field always present, nothing undocumented."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters: all optional; unknown ones are ignored (cache busters...)."""

    model_config = ConfigDict(extra="ignore")


# -- replies ---------------------------------------------------------------------


class ErrorReply(Reply):
    error: str


class CsrfReply(Reply):
    csrf_token: str


class QueueDetail(Reply):
    name: str
    pending: int
    active: int
    scheduled: int
    retry: int
    dead: int
    completed: int
    paused: bool
    enqueued: int
    processed: int
    failed: int
    retried: int
    dead_total: int
    cancelled: int
    oldest_pending_s: float | None
    rate_limited: int  # tasks parked by a global limit, ever (docs/limits.md)
    size: int


class Totals(Reply):
    queues: int
    paused: int
    pending: int
    active: int
    scheduled: int
    retry: int
    dead: int
    completed: int
    processed: int
    failed: int


class QueueList(Reply):
    queues: list[QueueDetail]
    totals: Totals


class Task(Reply):
    """A task as Redis holds it."""

    id: str
    type: str
    queue: str
    state: TaskState
    payload: Any = Field(
        description="decoded payload (JSON compatible; bytes as {$base64}); null when "
        "payload_truncated (listings: over 4 KiB; the task endpoint: over 1 MiB)"
    )
    payload_base64: str | None = Field(description="the raw payload; null when truncated")
    payload_size: int = Field(description="the payload's size in bytes")
    payload_truncated: bool = Field(
        description="payload and payload_base64 were left out (too large): fetch the task, "
        "or its payload_url"
    )
    payload_preview: str = Field(description="a one-line summary (at most 96 characters)")
    serializer: str | None
    retry_count: int
    max_retry: int
    priority: int
    labels: Labels
    timeout: float | None
    unique_key: str | None
    last_error: str | None
    traceback: str | None
    dead_reason: str | None
    created_at: Time
    process_at: Time
    started_at: Time
    completed_at: Time
    worker: str | None
    cancel_requested: bool


class TaskList(Reply):
    queue: str
    state: Listable
    offset: int
    limit: int
    total: int
    tasks: list[Task]
    next_cursor: str | None = Field(description="cursor of the next page (null: last page)")
    prev_cursor: str | None = Field(description="cursor of the previous page (null: first)")


class TimelineEntry(Reply):
    """An event (created, scheduled, requeued...) or, with ``attempt``, one attempt
    whose ``state`` is its outcome: running, completed, failed, dead, cancelled, upcoming."""

    state: str
    at: Time
    attempt: int | None = Field(description="1-based: attempt n of max_attempts")
    max_attempts: int | None
    started_at: Time
    worker: str | None
    error: str | None
    dead_reason: str | None
    duration_ms: float | None
    note: str | None


class TaskDetail(Task):
    """One task: Redis's record merged with the history store's."""

    payload_text: str = Field(description="the payload as the UI shows it (its start)")
    payload_kind: Literal["json", "text", "hex", "empty"]
    payload_url: str = Field(description="the whole payload, as a download (raw bytes)")
    attempts: int = Field(description="attempts started: the n of 'attempt n of m'")
    max_attempts: int
    duration_ms: float | None = Field(description="how long the last attempt ran")
    in_redis: bool
    in_history: bool
    timeline: list[TimelineEntry]
    result: Any = Field(
        description="a completed task's result, decoded (JSON compatible; bytes as "
        "{$base64}); null when it has none kept, when it is raw bytes, or over 1 MiB"
    )
    result_base64: str | None = Field(description="the encoded result; null when none")
    result_size: int | None = Field(description="the encoded result's size; null when none")
    result_serializer: str | None = Field(description="how the result is encoded")


class TaskTypeSummary(Reply):
    """One task type of one queue on one worker, since it started."""

    queue: str
    type: str
    processed: int
    failed: int
    p50_ms: int | None = Field(description="half the attempts ran at most this long (bucket)")
    p95_ms: int | None = Field(description="95% of the attempts ran at most this long (bucket)")


class Worker(Reply):
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    in_flight: int = Field(description="running tasks at the last heartbeat (<= 5 s old)")
    started_at: Time
    last_heartbeat: Time
    processed: int = Field(description="tasks completed since the worker started")
    failed: int = Field(description="failed attempts since the worker started")
    task_types: list[TaskTypeSummary]


class WorkerList(Reply):
    workers: list[Worker]


class Consumer(Reply):
    name: str
    pending: int
    idle_s: float
    alive: bool


class ConsumerList(Reply):
    queue: str
    group: str
    consumers: list[Consumer]


class ThroughputPoint(Reply):
    minute: Time
    processed: int
    failed: int


class Throughput(Reply):
    queue: str | None
    minutes: int
    points: list[ThroughputPoint]


class RedisInfo(BaseModel):
    """The Redis server's summary (version, memory, clients...)."""

    model_config = ConfigDict(extra="allow")


class HistoryItem(Reply):
    id: str
    queue: str
    type: str
    state: TaskState
    retry_count: int
    max_retry: int
    priority: int
    labels: Labels
    created_at: Time
    updated_at: Time
    process_at: Time
    started_at: Time
    finished_at: Time
    worker: str | None
    last_error: str | None
    dead_reason: str | None
    duration_ms: float | None


class HistoryPage(Reply):
    total: int
    next_cursor: str | None
    items: list[HistoryItem]


class TaskActionReply(Reply):
    task_id: str
    action: str
    done: bool


class QueueActionReply(Reply):
    queue: str
    action: str
    count: int


class BulkReply(Reply):
    queue: str
    action: str
    requested: int
    done: int


class ConsumerRemoved(Reply):
    queue: str
    consumer: str
    removed: bool


# -- request bodies ----------------------------------------------------------------


class BulkRequest(Reply):
    action: Literal["retry", "delete", "cancel"]
    ids: Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=1000)]


# -- query parameters ----------------------------------------------------------------


class Paging(Query):
    offset: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Rows to skip; at most 1000 for pending and active (use cursor).",
    )
    limit: int = Field(50, ge=1, le=500, description="Rows to return.")
    cursor: str | None = Field(
        None,
        max_length=64,
        description="A page's position: next_cursor or prev_cursor of a reply, or "
        "'last'. Costs the same on any page (offset reads what it skips).",
    )


class TaskListQuery(Paging):
    state: Listable = Field("pending", description="Which tasks (default pending).")


class TaskLookup(Query):
    queue: str | None = Field(None, description="Look only in this queue (default: every).")


class ThroughputQuery(Query):
    queue: str | None = Field(None, description="One queue (default all).")
    minutes: int = Field(60, ge=1, le=1440, description="Window, default 60.")


_ISO = "ISO 8601; naive values are UTC."


class HistoryQuery(Query):
    """Documents /api/history's parameters; ``ui.history`` parses them (with messages)."""

    queue: str | None = Field(None, description="Only this queue.")
    state: str | None = Field(None, description="Comma-separated states, e.g. dead,retry.")
    type: str | None = Field(None, description="Exact task type.")
    label: list[str] = Field([], description="key=value; repeat for several.")
    q: str | None = Field(None, description="Task id prefix or a substring of the type.")
    created_after: str | None = Field(None, description=_ISO)
    created_before: str | None = Field(None, description=_ISO)
    finished_after: str | None = Field(None, description=_ISO)
    finished_before: str | None = Field(None, description=_ISO)
    sort: Literal["created_at", "updated_at"] = Field("created_at", description="Sort column.")
    order: Literal["desc", "asc"] = Field("desc", description="Sort direction.")
    limit: int = Field(50, ge=1, le=200, description="Page size.")
    cursor: str | None = Field(None, description="next_cursor of the previous page.")


# -- operations ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """What one API route does and exchanges: the route table's entry in the document."""

    id: str
    summary: str
    tag: str
    reply: type[BaseModel]
    query: type[Query] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (401,)
