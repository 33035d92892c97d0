"""What this worker did, counted in process: one collector, two outputs.

The worker's heartbeat publishes a bounded summary (per-worker processed/failed, per
task type counts and a fixed-size duration histogram: ``Inspector.workers()``, the UI's
Workers and queue pages), and ``/metrics`` renders the same numbers for Prometheus
(``strego.worker.prometheus``). Recording is a few integer increments per task; no
output is built until someone asks.

Bounded by construction: queues are the worker's own; a task type is its own label
only when this worker has a handler for it (anyone can enqueue any type name), other
types count as ``(unknown)``, and at most ``MAX_TYPES`` labels exist per worker.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence

from strego.outcome import Cancelled, Dead, Outcome, Retry, Succeeded
from strego.records import DURATION_BOUNDS_MS

__all__ = [
    "DURATION_BOUNDS_S",
    "HEARTBEAT_TYPES",
    "MAX_TYPES",
    "OTHER_TYPES",
    "OUTCOMES",
    "UNKNOWN_TYPE",
    "WAIT_BOUNDS_S",
    "Histogram",
    "TypeCounts",
    "WorkerStats",
]

#: ``strego_tasks_total``'s ``outcome`` label values, in this order in ``TypeCounts``.
OUTCOMES = ("completed", "retried", "dead", "cancelled")
UNKNOWN_TYPE = "(unknown)"  # no handler here: the name is someone else's, not a label
OTHER_TYPES = "(other)"  # past MAX_TYPES distinct (queue, type) pairs
MAX_TYPES = 200
HEARTBEAT_TYPES = 50  # busiest (queue, type) pairs published in the heartbeat

# The heartbeat's histogram bounds (records.DURATION_BOUNDS_MS, shared with the UI so
# workers' histograms add up), also the Prometheus duration buckets: 1 ms to 60 s.
DURATION_BOUNDS_S: tuple[float, ...] = tuple(ms / 1000 for ms in DURATION_BOUNDS_MS)
# Waiting (due → start) ranges from milliseconds to a backlog of hours.
WAIT_BOUNDS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0,
)  # fmt: skip


@dataclasses.dataclass(slots=True)
class Histogram:
    """Counts per bucket (``counts[i]``: at most ``bounds[i]``; the last: slower)."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0  # sum of the observed values

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> Histogram:
        return cls(bounds, [0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclasses.dataclass(slots=True)
class TypeCounts:
    """One (queue, type): outcomes by ``OUTCOMES`` index, handler durations."""

    queue: str
    type: str
    outcomes: list[int]
    durations: Histogram

    @property
    def processed(self) -> int:
        return self.outcomes[0]

    @property
    def failed(self) -> int:  # failed attempts: retried or dead-lettered
        return self.outcomes[1] + self.outcomes[2]


class WorkerStats:
    def __init__(
        self,
        queues: Sequence[str],
        known_type: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queues = tuple(queues)
        self._known_type = known_type
        self._clock = clock
        self._types: dict[tuple[str, str], TypeCounts] = {}
        self.waits = {q: Histogram.empty(WAIT_BOUNDS_S) for q in self.queues}

    # -- recording (per task) ---------------------------------------------------------

    def started(self, queue: str, entry_id: str) -> None:
        """A handler starts: the wait since the task became due. A stream entry's id
        is the Redis time it was added, which is when the task became due (enqueued,
        promoted when scheduled, or put back for a retry)."""
        wait = self.waits.get(queue)
        if wait is None:
            return
        try:
            due_s = int(entry_id[: entry_id.index("-")]) / 1000
        except ValueError:  # not an "ms-seq" id: nothing to measure
            return
        waited = self._clock() - due_s
        wait.observe(waited if waited > 0 else 0.0)  # clocks differ a little: never < 0

    def finished(self, queue: str, task_type: str, outcome: Outcome, ran: bool) -> None:
        """An outcome landed (``ran``: the handler ran, so its duration counts)."""
        index = _INDEX.get(type(outcome))
        if index is None or (index == 1 and not outcome.counted):  # type: ignore[union-attr]
            return  # Released, or a type waiting for a worker that has its handler
        counts = self._counts(queue, task_type)
        counts.outcomes[index] += 1
        if ran:
            counts.durations.observe(outcome.duration_s)  # type: ignore[union-attr]

    def _counts(self, queue: str, task_type: str) -> TypeCounts:
        found = self._types.get((queue, task_type))
        if found is not None:
            return found
        label = task_type if self._known_type(task_type) else UNKNOWN_TYPE
        if (queue, label) not in self._types and len(self._types) >= MAX_TYPES:
            label = OTHER_TYPES
        found = self._types.get((queue, label))
        if found is None:
            durations = Histogram.empty(DURATION_BOUNDS_S)
            found = TypeCounts(queue, label, [0] * len(OUTCOMES), durations)
            self._types[(queue, label)] = found  # never under an unknown type's own name
        return found

    # -- outputs ----------------------------------------------------------------------

    def by_type(self) -> Iterator[TypeCounts]:
        return iter(list(self._types.values()))

    @property
    def processed(self) -> int:
        return sum(c.processed for c in self._types.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self._types.values())

    def heartbeat_fields(self) -> dict[str, str]:
        """The heartbeat hash fields ``processed``, ``failed`` and ``types`` (JSON list
        of ``{"queue", "type", "processed", "failed", "buckets"}``, the busiest
        ``HEARTBEAT_TYPES``; ``buckets`` per ``records.DURATION_BOUNDS_MS``)."""
        busiest = sorted(self._types.values(), key=lambda c: -(c.processed + c.failed))
        types = [
            {
                "queue": c.queue,
                "type": c.type,
                "processed": c.processed,
                "failed": c.failed,
                "buckets": c.durations.counts,
            }
            for c in busiest[:HEARTBEAT_TYPES]
        ]
        return {
            "processed": str(self.processed),
            "failed": str(self.failed),
            "types": json.dumps(types, separators=(",", ":")),
        }


# Outcome → index in OUTCOMES (Released: back in its queue, no outcome of its own).
_INDEX: dict[type, int] = {Succeeded: 0, Retry: 1, Dead: 2, Cancelled: 3}
