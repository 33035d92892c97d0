"""What a history query asks for and what it returns: frozen values, no I/O, no psycopg.

The UI and users build a :class:`TaskFilter`, call a store's ``search``/``count``/
``get``/``queue_stats``/``throughput``, and render these values. They live apart
from the PostgreSQL adapter so that importing them never imports a database driver.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Mapping
from datetime import datetime

from strego.errors import ConfigurationError
from strego.task import TaskState

__all__ = [
    "QueueStats",
    "SortField",
    "TaskDetail",
    "TaskFilter",
    "TaskPage",
    "TaskSummary",
    "ThroughputPoint",
    "TimelineEntry",
]


class SortField(enum.StrEnum):
    """Columns a search can be ordered by; ties are broken by task id."""

    CREATED = "created_at"
    UPDATED = "updated_at"  # the newest event of the task: "recent activity"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskFilter:
    """Which tasks a search or count selects. Every field left at its default is ignored.

    ``states`` takes any collection of states (stored as a frozenset). ``labels``
    matches tasks whose labels contain every given pair. ``text`` matches a task id
    prefix or a substring of the type (case-insensitive). Ranges are half-open:
    ``after <= t < before``. "Finished" means completed, dead or cancelled.
    """

    queue: str | None = None
    states: Collection[TaskState] = frozenset()
    type: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None
    finished_after: datetime | None = None
    finished_before: datetime | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        try:  # normalised to a frozenset, so filters stay hashable and compare equal
            object.__setattr__(self, "states", frozenset(TaskState(s) for s in self.states))
        except ValueError as exc:
            raise ConfigurationError(f"unknown task state in {self.states!r}") from exc
        labels = dict(self.labels)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise ConfigurationError(f"labels must map str to str, got {self.labels!r}")
        object.__setattr__(self, "labels", labels)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskSummary:
    """One task as a list shows it: its current state and options, no payload."""

    id: str
    queue: str
    type: str
    state: TaskState
    retry_count: int
    max_retry: int
    priority: int
    labels: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    process_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    last_error: str | None
    dead_reason: str | None
    duration_ms: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One recorded transition: the state entered, when, and what came with it."""

    state: TaskState
    at: datetime
    retry_count: int
    worker: str | None = None
    error: str | None = None  # truncated to 500 characters; the row keeps the full one
    dead_reason: str | None = None
    duration_ms: float | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskDetail(TaskSummary):
    """One task with everything kept about it; ``timeline`` is oldest first."""

    payload: bytes | None
    serializer: str | None
    traceback: str | None
    timeline: tuple[TimelineEntry, ...]
    result: bytes | None = None  # a completed task's encoded result, if it had one
    result_serializer: str | None = None
    workflow_id: str | None = None  # the workflow it was a member of


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskPage:
    """One page of a search; pass ``next_cursor`` back to get the next one (None: last)."""

    items: tuple[TaskSummary, ...]
    next_cursor: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """What one queue finished inside a window; durations are of completed tasks only."""

    queue: str
    completed: int
    dead: int
    cancelled: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ThroughputPoint:
    """Tasks that finished during one minute (``minute`` is its start, UTC)."""

    minute: datetime
    completed: int
    dead: int
