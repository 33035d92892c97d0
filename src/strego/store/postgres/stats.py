"""Aggregates over the history (per-queue stats, throughput, state counts) and pruning.

Windowed aggregates read only tasks finished inside the window, through the partial
index on ``finished_at``, so a dashboard refresh costs the same at 1 M rows as at 1 k.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from strego.errors import ConfigurationError
from strego.store.query import QueueStats, ThroughputPoint
from strego.task import TaskState

__all__ = ["delete_older_than", "queue_stats", "state_counts", "throughput", "to_cutoff"]

_PRUNE_CHUNK = 10_000  # rows per DELETE, so pruning never holds long locks


def to_cutoff(when: timedelta | datetime, name: str) -> datetime:
    """An aware datetime: ``when`` itself, or now minus a non-negative ``timedelta``."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ConfigurationError(f"{name} must be an aware datetime, got a naive one")
        return when
    if isinstance(when, timedelta):
        if when < timedelta(0):
            raise ConfigurationError(f"{name} must not be negative, got {when}")
        return datetime.now(UTC) - when
    raise ConfigurationError(f"{name} must be a timedelta or an aware datetime, got {when!r}")


async def queue_stats(
    conn: psycopg.AsyncConnection[Any], *, since: datetime, queue: str | None
) -> list[QueueStats]:
    """Per queue: tasks finished since ``since``, with completed-task durations."""
    only_queue = "AND queue = %(queue)s" if queue is not None else ""
    cur = await conn.execute(
        "SELECT queue,"
        " count(*) FILTER (WHERE state = 'completed'),"
        " count(*) FILTER (WHERE state = 'dead'),"
        " count(*) FILTER (WHERE state = 'cancelled'),"
        " avg(duration_ms) FILTER (WHERE state = 'completed'),"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)"
        "   FILTER (WHERE state = 'completed')"
        " FROM strego_tasks"
        f" WHERE finished_at >= %(since)s {only_queue}"
        " GROUP BY queue ORDER BY queue",
        {"since": since, "queue": queue},
    )
    return [
        QueueStats(
            queue=name,
            completed=completed,
            dead=dead,
            cancelled=cancelled,
            avg_duration_ms=None if avg is None else float(avg),
            p95_duration_ms=None if p95 is None else float(p95),
        )
        for name, completed, dead, cancelled, avg, p95 in await cur.fetchall()
    ]


async def throughput(
    conn: psycopg.AsyncConnection[Any], *, minutes: int, until: datetime, queue: str | None
) -> list[ThroughputPoint]:
    """Finished tasks per minute for the ``minutes`` minutes ending with ``until``'s.

    Every minute is present, empty ones with zeros, so a chart needs no gap logic.
    """
    if not 1 <= minutes <= 7 * 24 * 60:
        raise ConfigurationError(f"minutes must be 1..10080, got {minutes}")
    end = until.astimezone(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    only_queue = "AND queue = %(queue)s" if queue is not None else ""
    cur = await conn.execute(
        "WITH done AS ("
        "  SELECT date_trunc('minute', finished_at) AS minute,"
        "   count(*) FILTER (WHERE state = 'completed') AS completed,"
        "   count(*) FILTER (WHERE state = 'dead') AS dead"
        "  FROM strego_tasks"
        f"  WHERE finished_at >= %(start)s AND finished_at < %(stop)s {only_queue}"
        "  GROUP BY 1)"
        " SELECT m.minute, coalesce(d.completed, 0), coalesce(d.dead, 0)"
        " FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz,"
        "   interval '1 minute') AS m(minute)"
        " LEFT JOIN done d USING (minute) ORDER BY m.minute",
        {"start": start, "end": end, "stop": end + timedelta(minutes=1), "queue": queue},
    )
    return [
        ThroughputPoint(minute=minute.astimezone(UTC), completed=completed, dead=dead)
        for minute, completed, dead in await cur.fetchall()
    ]


async def state_counts(
    conn: psycopg.AsyncConnection[Any], *, queue: str | None
) -> dict[TaskState, int]:
    """How many tasks are in each state (every state present, zeros included)."""
    only_queue = "WHERE queue = %(queue)s" if queue is not None else ""
    cur = await conn.execute(
        f"SELECT state, count(*) FROM strego_tasks {only_queue} GROUP BY state",
        {"queue": queue},
    )
    counts = dict.fromkeys(TaskState, 0)
    for state, count in await cur.fetchall():
        counts[TaskState(state)] = int(count)
    return counts


async def delete_older_than(conn: psycopg.AsyncConnection[Any], cutoff: datetime) -> int:
    """Delete tasks whose newest event is older than ``cutoff``; return how many.

    Deletes in chunks, each its own transaction (``conn`` is in autocommit), and
    skips rows a writer holds right now (they are being updated, so not old).
    """
    total = 0
    while True:
        cur = await conn.execute(
            "WITH doomed AS ("
            "  SELECT id FROM strego_tasks WHERE updated_at < %(cutoff)s"
            "  LIMIT %(chunk)s FOR UPDATE SKIP LOCKED)"
            " DELETE FROM strego_tasks t USING doomed WHERE t.id = doomed.id",
            {"cutoff": cutoff, "chunk": _PRUNE_CHUNK},
        )
        total += cur.rowcount
        if cur.rowcount < _PRUNE_CHUNK:
            return total
