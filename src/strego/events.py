"""Task events: what clients and workers tell a history store (an observer)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from strego.task import TaskState

__all__ = ["TaskEvent"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    """One state transition of one task.

    ``state`` is the state entered. Creation events (pending/scheduled) carry the
    payload and options; later events carry what changed (attempt, error, worker).
    """

    task_id: str
    queue: str
    type: str
    state: TaskState
    at: datetime
    retry_count: int = 0
    max_retry: int = 0
    priority: int = 0
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    payload: bytes | None = None
    serializer: str | None = None
    created_at: datetime | None = None
    process_at: datetime | None = None
    error: str | None = None
    traceback: str | None = None
    dead_reason: str | None = None
    worker: str | None = None
    duration_ms: float | None = None
    result: bytes | None = None  # a completed task's encoded result (see strego.results)
    result_serializer: str | None = None
    workflow_id: str | None = None  # the workflow it is a member of (strego.chain...)
