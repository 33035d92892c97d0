"""The periodic seams: what a worker needs to fire schedules, and what admins need.

Implemented by the Redis adapter (``strego.broker.redis.periodic``); the worker and
the Inspector never import Redis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from strego.envelope import TaskMessage
from strego.periodic.info import PeriodicInfo
from strego.task import TaskInfo

__all__ = ["DueReport", "DueSchedule", "FireRequest", "FireResult", "PeriodicAdmin", "Periodics"]


@dataclasses.dataclass(frozen=True, slots=True)
class DueSchedule:
    name: str
    next_ms: int  # the stored next fire time the fire request must compare against
    definition: str  # as stored


@dataclasses.dataclass(frozen=True, slots=True)
class DueReport:
    now_ms: int  # Redis' clock
    due: list[DueSchedule]
    soonest_ms: int | None  # the earliest next fire time not yet due, of those asked
    lost: list[str] = dataclasses.field(default_factory=list)  # to declare again


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FireRequest:
    name: str
    definition: str
    expected_next_ms: int | None  # None: a trigger (no compare-and-set)
    next_ms: int
    overlap_skip: bool
    ticks: Sequence[tuple[int, TaskMessage]]  # (tick ms, its task)


@dataclasses.dataclass(frozen=True, slots=True)
class FireResult:
    status: str  # fired | moved | changed | early | gone
    fired: int = 0
    skipped: int = 0


class Periodics(Protocol):
    """What a worker runs to fire the schedules it declares."""

    async def declare(self, queue: str, definitions: Mapping[str, str]) -> int:
        """Upsert name → definition; returns how many changed."""

    async def due(self, queue: str, names: Sequence[str], *, touch: bool) -> DueReport:
        """Which of ``names`` are due now (Redis' clock); ``touch`` marks them seen."""

    async def fire(self, queue: str, requests: Sequence[FireRequest]) -> list[FireResult]:
        """Apply fire plans, each atomically and only if still current."""


class PeriodicAdmin(Protocol):
    """What the Inspector (UI, CLI) does with schedules."""

    async def schedules(self, queue: str | None = None) -> list[PeriodicInfo]: ...

    async def pause(self, name: str, queue: str) -> bool: ...

    async def resume(self, name: str, queue: str) -> bool: ...

    async def trigger(self, name: str, queue: str) -> TaskInfo: ...

    async def delete(self, name: str, queue: str) -> bool: ...
