"""A task's timeline as people read it: events, then one line per attempt.

"Attempt n of m" everywhere (n from 1, m = max_retry + 1); each attempt carries its own
worker, duration, error and outcome. Built from the history store's recorded events
when there is one, else from what Redis keeps of the task (its last error, times).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

from strego.records import TaskRecord, attempts_started
from strego.store.query import TimelineEntry
from strego.task import TaskState

__all__ = ["NOT_RUN_REASONS", "TimelineItem", "history_timeline", "redis_timeline"]

# Dead reasons decided before any handler ran: such a death is not an attempt's end.
NOT_RUN_REASONS = frozenset(
    {"malformed", "undecodable", "unknown_type", "unknown_serializer", "poison", "lost"}
)
# The outcome of an attempt, by the state its end entered ("retry": it failed).
_OUTCOME = {
    TaskState.RETRY: "failed",
    TaskState.COMPLETED: "completed",
    TaskState.DEAD: "dead",
    TaskState.CANCELLED: "cancelled",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TimelineItem:
    """One line: an event (``created``, ``scheduled``, ``requeued``, ``due``...) or, when
    ``attempt`` is set, one attempt whose ``state`` is its outcome (``running``,
    ``completed``, ``failed``, ``dead``, ``cancelled``; ``upcoming`` for the next one)."""

    state: str
    at: datetime | None
    attempt: int | None = None
    max_attempts: int | None = None
    started_at: datetime | None = None
    worker: str | None = None
    error: str | None = None
    dead_reason: str | None = None
    duration_ms: float | None = None
    note: str | None = None

    @property
    def is_attempt(self) -> bool:
        return self.attempt is not None


def history_timeline(entries: Iterable[TimelineEntry], max_retry: int) -> list[TimelineItem]:
    """Recorded events, oldest first, with each "active" and its outcome as one attempt.

    An outcome's ``retry_count`` is the task's after it: a retry event says the attempt
    ``retry_count`` (1-based) failed; any other outcome ends attempt ``retry_count + 1``.
    """
    items: list[TimelineItem] = []
    most = max_retry + 1
    for entry in entries:
        state = TaskState(entry.state)
        if state in (TaskState.PENDING, TaskState.SCHEDULED):
            first = "created" if state == TaskState.PENDING else "scheduled"
            name = first if not items else "requeued"
            if items and entry.retry_count:  # a due retry moving back to its stream
                continue
            items.append(TimelineItem(state=name, at=entry.at))
        elif state == TaskState.ACTIVE:
            items.append(
                TimelineItem(
                    state="running",
                    at=entry.at,
                    attempt=entry.retry_count + 1,
                    max_attempts=most,
                    started_at=entry.at,
                    worker=entry.worker,
                )
            )
        else:
            _end_attempt(items, entry, state, most)
    return items


def _end_attempt(
    items: list[TimelineItem], entry: TimelineEntry, state: TaskState, most: int
) -> None:
    number = entry.retry_count if state == TaskState.RETRY else entry.retry_count + 1
    running = items[-1] if items and items[-1].state == "running" else None
    if running is not None and running.attempt == number:
        items[-1] = dataclasses.replace(
            running,
            state=_OUTCOME[state],
            at=entry.at,
            worker=entry.worker or running.worker,
            error=entry.error,
            dead_reason=entry.dead_reason,
            duration_ms=entry.duration_ms,
        )
        return
    if state in (TaskState.CANCELLED, TaskState.DEAD):  # ended before running: an event
        items.append(
            TimelineItem(
                state=str(state), at=entry.at, error=entry.error, dead_reason=entry.dead_reason
            )
        )
        return
    items.append(  # its start was not recorded (e.g. the store was down for a moment)
        TimelineItem(
            state=_OUTCOME[state],
            at=entry.at,
            attempt=number,
            max_attempts=most,
            worker=entry.worker,
            error=entry.error,
            duration_ms=entry.duration_ms,
        )
    )


def redis_timeline(record: TaskRecord) -> list[TimelineItem]:
    """What Redis alone tells: creation, the last failed attempt (its error), the current
    or final attempt (times, worker, outcome) and the next one's due time."""
    items: list[TimelineItem] = []
    most = record.max_attempts
    if record.created_at:
        items.append(TimelineItem(state="created", at=record.created_at))
    items.extend(_failed_attempts(record))
    current = _current_attempt(record)
    if current is not None:
        items.append(current)
    if record.state in (TaskState.SCHEDULED, TaskState.RETRY, TaskState.PENDING):
        started = attempts_started(record.state, record.retry_count)
        items.append(
            TimelineItem(
                state="upcoming",
                at=record.process_at,
                attempt=started + 1,
                max_attempts=most,
            )
        )
    return items


def _failed_attempts(record: TaskRecord) -> list[TimelineItem]:
    """Attempts 1..retry_count failed (each retry follows a failure). Redis keeps the
    last error only: it is attempt ``retry_count``'s, unless the task died or was
    cancelled since (then it is the final outcome's). Earlier errors are not kept: said
    once; more than a few such attempts are summed up in one line."""
    failed = record.retry_count
    if failed < 1:
        return []
    last_error_is_theirs = record.state not in (TaskState.DEAD, TaskState.CANCELLED)
    unknown = failed - 1 if last_error_is_theirs else failed
    items: list[TimelineItem] = []
    if unknown > _SPELLED_OUT:
        note = f"attempts 1-{unknown} of {record.max_attempts} failed; their errors{_NOT_KEPT}"
        items.append(TimelineItem(state="failed", at=None, note=note))
    else:
        items += [
            TimelineItem(state="failed", at=None, attempt=n, max_attempts=record.max_attempts)
            for n in range(1, unknown + 1)
        ]
        if items:
            whose = "error" if unknown == 1 else f"errors of attempts 1-{unknown}"
            items[-1] = dataclasses.replace(items[-1], note=f"{whose}{_NOT_KEPT}")
    if last_error_is_theirs:
        items.append(
            TimelineItem(
                state="failed",
                at=None,
                attempt=failed,
                max_attempts=record.max_attempts,
                error=record.last_error,
            )
        )
    return items


_SPELLED_OUT = 3  # earlier failed attempts listed one by one, at most
_NOT_KEPT = " not kept (a history store keeps every attempt's)"


def _current_attempt(record: TaskRecord) -> TimelineItem | None:
    """The running or final attempt, with what Redis recorded of it."""
    most = record.max_attempts
    if record.state == TaskState.ACTIVE:
        return TimelineItem(
            state="running",
            at=record.started_at,
            attempt=record.retry_count + 1,
            max_attempts=most,
            started_at=record.started_at,
            worker=record.worker,
        )
    if record.state == TaskState.DEAD and record.dead_reason in NOT_RUN_REASONS:
        return TimelineItem(
            state="dead",
            at=record.completed_at,
            error=record.last_error,
            dead_reason=record.dead_reason,
        )
    if record.state not in (TaskState.COMPLETED, TaskState.DEAD, TaskState.CANCELLED):
        return None
    duration = record.duration_s
    ran = record.state != TaskState.CANCELLED or record.started_at is not None
    return TimelineItem(
        state=str(record.state),
        at=record.completed_at,
        attempt=record.retry_count + 1 if ran else None,
        max_attempts=most if ran else None,
        started_at=record.started_at,
        worker=record.worker,
        error=record.last_error if record.state != TaskState.COMPLETED else None,
        dead_reason=record.dead_reason,
        duration_ms=None if duration is None else duration * 1000,
    )
