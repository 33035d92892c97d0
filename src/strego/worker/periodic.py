"""The worker's side of periodic tasks: declare at start, fire what is due.

No loop of its own: the scheduler loop (maintenance.run_scheduler) calls
:meth:`PeriodicFirer.run_due` at each wake-up and sleeps until the sooner of the next
scheduled task and the next tick (both on Redis' clock). Every worker declaring a
schedule may fire it; the compare-and-set script lets exactly one apply each tick.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence

from strego.errors import ConfigurationError
from strego.periodic.base import DueReport, DueSchedule, FireRequest, FireResult, Periodics
from strego.periodic.definition import Definition, task_id
from strego.periodic.info import SEEN_EVERY_S
from strego.periodic.plan import plan
from strego.periodic.schedule import Periodic

__all__ = ["PeriodicFirer", "check_schedules"]

log = logging.getLogger("strego")
_EARLY_RETRY_S = 0.05  # Redis' clock went back under a plan: look again shortly
_FIRE_CHUNK = 100


def check_schedules(schedules: Iterable[object]) -> tuple[Periodic, ...]:
    """Validate ``Server(periodic=...)``: Periodic objects, names unique per queue."""
    found: dict[tuple[str, str], Periodic] = {}
    for schedule in schedules:
        if not isinstance(schedule, Periodic):
            raise ConfigurationError(
                f"periodic= takes strego.Periodic objects, got {type(schedule).__name__}"
            )
        key = (schedule.queue, schedule.name)
        if key in found:
            raise ConfigurationError(
                f"two periodic schedules named {schedule.name!r} in queue {schedule.queue!r}: "
                "give one a name="
            )
        found[key] = schedule
    return tuple(found.values())


class PeriodicFirer:
    def __init__(
        self,
        periodics: Periodics,
        schedules: Sequence[Periodic],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._periodics = periodics
        self._clock = clock
        self._by_queue: dict[str, dict[str, str]] = {}
        for schedule in schedules:
            self._by_queue.setdefault(schedule.queue, {})[schedule.name] = schedule.definition()
        self._declared: set[str] = set()
        self._seen_at = -math.inf
        self._unreadable: set[str] = set()  # definitions already warned about
        # Parsed definitions by name, with the text they came from: an every-second
        # schedule is due every second, and its definition rarely changes.
        self._parsed: dict[str, Definition] = {}

    async def declare(self) -> None:
        """Upsert this worker's schedules (at start; idempotent, the latest wins)."""
        for queue, definitions in self._by_queue.items():
            if queue in self._declared:
                continue
            changed = await self._periodics.declare(queue, definitions)
            self._declared.add(queue)
            log.info(
                "declared %d periodic schedules (%d new or changed)",
                len(definitions),
                changed,
                extra={"queue": queue},
            )

    async def _declare_again(self, queue: str, names: list[str]) -> None:
        # Redis lost them (restarted without its data, flushed, or an operator deleted a
        # schedule this worker still declares): a schedule must not silently stop.
        definitions = self._by_queue[queue]
        await self._periodics.declare(queue, {n: definitions[n] for n in names})
        log.warning(
            "periodic schedules %s were missing in Redis; declared them again",
            ", ".join(sorted(names)),
            extra={"queue": queue},
        )

    async def run_due(self) -> float | None:
        """Fire what is due; seconds until the next tick of a declared schedule."""
        await self.declare()  # in case start-up was cut short after registering
        touch = self._clock() - self._seen_at >= SEEN_EVERY_S
        waits: list[float] = []
        for queue, definitions in self._by_queue.items():
            report = await self._periodics.due(queue, list(definitions), touch=touch)
            if report.lost:
                await self._declare_again(queue, report.lost)
                waits.append(0.0)  # look again now that they are back
            waits.extend(await self._fire(queue, report))
        if touch:
            self._seen_at = self._clock()
        # Wake at least this often, whatever the broker's block: the seen marks are what
        # keeps declared schedules from being listed as orphaned.
        return min([*waits, SEEN_EVERY_S])

    async def _fire(self, queue: str, report: DueReport) -> list[float]:
        waits = [] if report.soonest_ms is None else [(report.soonest_ms - report.now_ms) / 1000]
        # In chunks: a thousand schedules due at once are fired a hundred per round trip,
        # so the first runs are fetched and started while the rest are still being fired
        # (the event loop is not held for the whole burst).
        for start in range(0, len(report.due), _FIRE_CHUNK):
            chunk = report.due[start : start + _FIRE_CHUNK]
            waits.extend(await self._fire_chunk(queue, chunk, report.now_ms))
        return [w for w in waits if not math.isnan(w)]

    async def _fire_chunk(
        self, queue: str, due_schedules: Sequence[DueSchedule], now_ms: int
    ) -> list[float]:
        waits: list[float] = []
        requests: list[FireRequest] = []
        missed: list[tuple[str, int, str]] = []  # name, missed ticks, catchup rule
        for due in due_schedules:
            try:
                definition = self._definition(queue, due.name, due.definition)
            except ConfigurationError as exc:
                if due.definition not in self._unreadable:
                    self._unreadable.add(due.definition)
                    log.error("not firing: %s", exc, extra={"queue": queue})
                continue
            fire = plan(
                definition.spec,
                stored_next_ms=due.next_ms,
                now_ms=now_ms,
                catchup=definition.catchup,
                max_catchup=definition.max_catchup,
                max_lateness_ms=definition.max_lateness_ms,
            )
            requests.append(
                FireRequest(
                    name=due.name,
                    definition=due.definition,
                    expected_next_ms=due.next_ms,
                    next_ms=fire.next_ms,
                    overlap_skip=definition.overlap == "skip",
                    ticks=[
                        (tick, definition.message(task_id(due.name, tick), now_ms))
                        for tick in fire.ticks
                    ],
                )
            )
            waits.append((fire.next_ms - now_ms) / 1000)
            missed.append((due.name, fire.missed, definition.catchup))
        if not requests:
            return waits
        results = await self._periodics.fire(queue, requests)
        waits.extend(_retry_after(result) for result in results)
        for (name, count, catchup), result in zip(missed, results, strict=True):
            if count and result.status == "fired":  # said once: by the worker that won
                log.info(
                    "periodic %s: %d missed ticks not run (catchup=%s)",
                    name,
                    count,
                    catchup,
                    extra={"queue": queue},
                )
        return waits

    def _definition(self, queue: str, name: str, text: str) -> Definition:
        known = self._parsed.get(f"{queue}\n{name}")
        if known is not None and known.text == text:
            return known
        parsed = Definition.parse(name, queue, text)
        self._parsed[f"{queue}\n{name}"] = parsed  # bounded: one per declared schedule
        return parsed


def _retry_after(result: FireResult) -> float:
    """Another worker applied first (moved), or the definition changed meanwhile: look
    again at once (the stored next fire time tells when); nan: nothing to add."""
    if result.status in ("moved", "changed"):
        return 0.0
    if result.status == "early":
        return _EARLY_RETRY_S
    return math.nan
