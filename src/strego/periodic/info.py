"""PeriodicInfo: a schedule as the Inspector, the UI and the CLI show it."""

from __future__ import annotations

import dataclasses
from datetime import datetime

__all__ = ["ORPHANED_AFTER_S", "SEEN_EVERY_S", "PeriodicInfo", "PeriodicRun"]

#: Workers mark the schedules they declare as seen this often (throttled)...
SEEN_EVERY_S = 15.0
#: ...so one nobody marked for this long is declared by no live worker: orphaned.
ORPHANED_AFTER_S = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodicRun:
    """One entry of a schedule's log (the last 20 are kept)."""

    tick: datetime  # the scheduled time (or the trigger's time)
    at: datetime  # when Redis fired it
    outcome: str  # fired | skipped (overlap) | exists / processed (already ran)
    task_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicInfo:
    name: str
    type: str
    queue: str
    cron: str | None
    every: float | None  # seconds
    tz: str
    next_run: datetime | None  # None while paused or before a worker started it
    last_run: datetime | None
    last_task_id: str | None
    paused: bool
    orphaned: bool  # no live worker declares it any more: listed until deleted
    catchup: str = "latest"
    overlap: str = "allow"
    runs: tuple[PeriodicRun, ...] = ()
    error: str | None = None  # the stored definition could not be read
