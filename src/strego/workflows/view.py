"""What Inspector.workflow returns: a workflow's graph with each task's state."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["WorkflowState", "WorkflowTask", "WorkflowView"]


class WorkflowState(enum.StrEnum):
    RUNNING = "running"  # something is waiting, queued or running
    COMPLETED = "completed"  # every task completed
    FAILED = "failed"  # a task is dead or was cancelled because a dependency failed
    CANCELLED = "cancelled"  # the workflow was cancelled


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowTask:
    """One task of a workflow. ``state`` is a TaskState value, or ``waiting`` (held
    until its dependencies complete), or ``expired`` (its record is gone)."""

    id: str
    type: str
    queue: str
    state: str
    deps: list[str]  # ids of its direct dependencies, in upstream_results order
    reason: str | None = None  # dead reason, or upstream_failed / cancelled


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowView:
    id: str
    state: WorkflowState
    tasks: list[WorkflowTask]  # in flow order (depth-first, left to right)

    def task(self, task_id: str) -> WorkflowTask | None:
        return next((t for t in self.tasks if t.id == task_id), None)


def overall(states: list[str], cancelled: bool) -> WorkflowState:
    if cancelled:
        return WorkflowState.CANCELLED
    if any(s in ("dead", "cancelled") for s in states):
        return WorkflowState.FAILED
    if all(s == "completed" for s in states):
        return WorkflowState.COMPLETED
    return WorkflowState.RUNNING
