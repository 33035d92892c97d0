"""The worker's in-process collector: outcomes, bounded labels, bounded heartbeat."""

from __future__ import annotations

import json

from strego.envelope import TaskMessage
from strego.outcome import Cancelled, Dead, DeadReason, Released, Retry, Succeeded
from strego.records import DURATION_BOUNDS_MS
from strego.worker.stats import (
    HEARTBEAT_TYPES,
    MAX_TYPES,
    OTHER_TYPES,
    UNKNOWN_TYPE,
    WorkerStats,
)

MESSAGE = TaskMessage(id="1", type="t", queue="q", payload=b"")


def test_outcomes_counted_by_kind() -> None:
    stats = WorkerStats(["q"], lambda t: t == "t")
    stats.finished("q", "t", Succeeded("1", duration_s=0.003), ran=True)
    stats.finished("q", "t", Retry(MESSAGE, 1.0, 0.5), ran=True)
    stats.finished("q", "t", Dead(MESSAGE, DeadReason.VALIDATION), ran=False)
    stats.finished("q", "t", Cancelled("1"), ran=False)
    stats.finished("q", "t", Released("1"), ran=True)  # back in its queue: no outcome
    stats.finished("q", "t", Retry(MESSAGE, 1.0, 0.0, counted=False), ran=False)  # no handler
    (counts,) = stats.by_type()
    assert counts.outcomes == [1, 1, 1, 1]
    assert (stats.processed, stats.failed) == (1, 2)
    assert counts.durations.count == 2  # only attempts whose handler ran
    assert counts.durations.counts[DURATION_BOUNDS_MS.index(5)] == 1  # 3 ms: "at most 5"
    assert counts.durations.counts[DURATION_BOUNDS_MS.index(500)] == 1


def test_labels_are_bounded() -> None:
    """Types no handler here knows share one label; past MAX_TYPES, one more."""
    stats = WorkerStats(["q"], lambda t: t.startswith("known"))
    for n in range(1000):
        stats.finished("q", f"someone-elses-{n}", Succeeded("1"), ran=True)
    for n in range(MAX_TYPES + 50):
        stats.finished("q", f"known-{n}", Succeeded("1"), ran=True)
    labels = {c.type for c in stats.by_type()}
    assert UNKNOWN_TYPE in labels and OTHER_TYPES in labels
    assert len(labels) == MAX_TYPES + 1  # MAX_TYPES pairs, then everything else in "(other)"
    assert sum(c.processed for c in stats.by_type()) == 1000 + MAX_TYPES + 50


def test_heartbeat_is_bounded_and_shaped_for_the_inspector() -> None:
    stats = WorkerStats(["q"], lambda t: True)
    for n in range(MAX_TYPES):
        for _ in range(n % 7):
            stats.finished("q", f"type-{n:03}-" + "x" * 150, Succeeded("1"), ran=True)
    fields = stats.heartbeat_fields()
    types = json.loads(fields["types"])
    assert len(types) == HEARTBEAT_TYPES
    assert set(types[0]) == {"queue", "type", "processed", "failed", "buckets"}
    assert len(types[0]["buckets"]) == len(DURATION_BOUNDS_MS) + 1
    assert len(fields["types"]) < 16_000  # about 10 KB at most, every 5 s
    assert int(fields["processed"]) == sum(n % 7 for n in range(MAX_TYPES))


def test_wait_from_the_entry_id() -> None:
    stats = WorkerStats(["q"], lambda t: True, clock=lambda: 1000.25)
    stats.started("q", "1000000-0")  # due at 1000.000 s: waited 250 ms
    stats.started("q", "1000500-3")  # due "after" now (clocks differ): 0, not negative
    stats.started("elsewhere", "1-0")  # not this worker's queue: ignored
    stats.started("q", "garbage")
    wait = stats.waits["q"]
    assert wait.count == 2 and wait.total == 0.25
