"""Aggregates for dashboards (per-queue stats, throughput, state counts) and pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strego.errors import ConfigurationError
from strego.store.postgres import PostgresStore
from strego.task import TaskState

from .pg_helpers import event, new_id, written

pytestmark = pytest.mark.postgres

S = TaskState
NOW = datetime.now(UTC).replace(second=30, microsecond=0)


def _finish(store: PostgresStore, queue: str, state: TaskState, when: datetime, ms: float) -> str:
    tid = new_id()
    store.record(event(tid, S.PENDING, when - timedelta(seconds=1), queue=queue))
    store.record(event(tid, state, when, queue=queue, duration_ms=ms))
    return tid


async def test_queue_stats_average_and_p95(fresh_store: PostgresStore) -> None:
    """Per queue: finished counts by state, avg and p95 of completed durations only."""
    for ms in range(10, 110, 10):  # 10..100 ms
        _finish(fresh_store, "fast", S.COMPLETED, NOW - timedelta(minutes=5), float(ms))
    _finish(fresh_store, "fast", S.DEAD, NOW - timedelta(minutes=5), 9999.0)
    _finish(fresh_store, "fast", S.CANCELLED, NOW - timedelta(minutes=5), 0.0)
    _finish(fresh_store, "slow", S.COMPLETED, NOW - timedelta(minutes=5), 5000.0)
    _finish(fresh_store, "slow", S.COMPLETED, NOW - timedelta(hours=3), 1.0)  # outside window
    fresh_store.record(event(new_id(), S.PENDING, NOW, queue="idle"))  # not finished
    await written(fresh_store)

    fast, slow = await fresh_store.queue_stats(since=timedelta(hours=1))
    assert (fast.queue, fast.completed, fast.dead, fast.cancelled) == ("fast", 10, 1, 1)
    assert fast.avg_duration_ms == pytest.approx(55.0)
    assert fast.p95_duration_ms == pytest.approx(95.5)  # percentile_cont, interpolated
    assert (slow.queue, slow.completed, slow.avg_duration_ms) == ("slow", 1, 5000.0)
    assert await fresh_store.queue_stats(since=timedelta(hours=1), queue="slow") == [slow]


async def test_throughput_per_minute_with_empty_minutes(fresh_store: PostgresStore) -> None:
    """One point per minute, oldest first, zeros where nothing finished."""
    for _ in range(3):
        _finish(fresh_store, "tp", S.COMPLETED, NOW - timedelta(minutes=2), 1.0)
    _finish(fresh_store, "tp", S.DEAD, NOW - timedelta(minutes=2), 1.0)
    _finish(fresh_store, "tp", S.COMPLETED, NOW, 1.0)
    _finish(fresh_store, "other", S.COMPLETED, NOW, 1.0)
    await written(fresh_store)

    points = await fresh_store.throughput(queue="tp", minutes=4, until=NOW)
    minute = NOW.replace(second=0)
    assert [p.minute for p in points] == [minute - timedelta(minutes=k) for k in (3, 2, 1, 0)]
    assert [(p.completed, p.dead) for p in points] == [(0, 0), (3, 1), (0, 0), (1, 0)]
    everywhere = await fresh_store.throughput(minutes=1, until=NOW)
    assert [(p.completed, p.dead) for p in everywhere] == [(2, 0)]


async def test_state_counts_include_every_state(fresh_store: PostgresStore) -> None:
    """state_counts maps every state (zeros included), per queue or overall."""
    _finish(fresh_store, "sc", S.COMPLETED, NOW, 1.0)
    _finish(fresh_store, "sc", S.DEAD, NOW, 1.0)
    fresh_store.record(event(new_id(), S.PENDING, NOW, queue="sc"))
    fresh_store.record(event(new_id(), S.PENDING, NOW, queue="elsewhere"))
    await written(fresh_store)
    counts = await fresh_store.state_counts("sc")
    assert counts == {s: 0 for s in S} | {S.COMPLETED: 1, S.DEAD: 1, S.PENDING: 1}
    assert (await fresh_store.state_counts())[S.PENDING] == 2


async def test_delete_older_than_by_age_or_datetime(fresh_store: PostgresStore) -> None:
    """delete_older_than removes tasks whose newest event is older; returns the count."""
    ancient = [_finish(fresh_store, "p", S.COMPLETED, NOW - timedelta(days=90), 1.0)]
    old = [_finish(fresh_store, "p", S.DEAD, NOW - timedelta(days=40), 1.0) for _ in range(3)]
    # created long ago but active yesterday: its newest event is recent, so it stays
    revived = new_id()
    fresh_store.record(event(revived, S.PENDING, NOW - timedelta(days=60), queue="p"))
    fresh_store.record(event(revived, S.ACTIVE, NOW - timedelta(days=1), queue="p"))
    await written(fresh_store)

    assert await fresh_store.delete_older_than(NOW - timedelta(days=60)) == 1
    assert await fresh_store.delete_older_than(timedelta(days=30)) == 3
    assert await fresh_store.delete_older_than(timedelta(days=30)) == 0
    for tid in ancient + old:
        assert await fresh_store.get(tid) is None
    assert await fresh_store.get(revived) is not None


async def test_bad_windows_are_refused(fresh_store: PostgresStore) -> None:
    """Negative ages, naive datetimes and silly minute counts raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        await fresh_store.delete_older_than(timedelta(days=-1))
    with pytest.raises(ConfigurationError):
        await fresh_store.delete_older_than(datetime(2024, 1, 1))
    with pytest.raises(ConfigurationError):
        await fresh_store.throughput(minutes=0)
