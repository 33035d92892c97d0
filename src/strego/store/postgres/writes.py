"""How a batch of task events becomes rows: one multi-row upsert per "round".

The merge rules live in SQL (``strego_event_advances`` in 0001_initial.sql) so that
every writer — a client, many workers — applies the same ones, whatever order their
batches arrive in. ``INSERT .. ON CONFLICT`` may touch a row only once per
statement, so a batch is split into rounds: round k holds the k-th event of each task,
in arrival order. Each round is one statement sent as one JSON parameter.

Writes are idempotent: replaying a batch (after a commit whose acknowledgement was
lost) changes nothing, because a state never moves sideways and the timeline ignores
an entry it already holds. That is why rounds need not share a transaction.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from strego.events import TaskEvent
from strego.store.postgres.config import TIMELINE_CAP

__all__ = ["event_row", "split_rounds", "write_events"]

# The incoming event takes the row forward (see strego_event_advances in SQL).
_ADVANCES = (
    "strego_event_advances(t.state, t.retry_count, t.finished_at,"
    " excluded.state, excluded.retry_count, excluded.updated_at)"
)


def _pick(column: str) -> str:
    # An advancing event's values win; a late one only fills what is still unknown.
    return (
        f"{column} = CASE WHEN {_ADVANCES} THEN coalesce(excluded.{column}, t.{column})"
        f" ELSE coalesce(t.{column}, excluded.{column}) END"
    )


_MERGE = f"""
INSERT INTO strego_tasks AS t (
    id, queue, type, state, retry_count, max_retry, priority, labels, payload, serializer,
    created_at, process_at, started_at, finished_at, updated_at,
    last_error, traceback, dead_reason, worker, duration_ms, timeline)
SELECT
    x.task_id, x.queue, x.type, x.state, x.retry_count, x.max_retry, x.priority,
    coalesce(x.labels, '{{}}'), decode(x.payload, 'hex'), x.serializer,
    coalesce(x.created_at, x.at), x.process_at,
    CASE WHEN x.state = 'active' THEN x.at END,
    CASE WHEN x.state IN ('completed', 'dead', 'cancelled') THEN x.at END,
    x.at, x.error, x.traceback, x.dead_reason, x.worker, x.duration_ms,
    jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
        'state', x.state, 'at', extract(epoch FROM x.at), 'retry_count', x.retry_count,
        'worker', x.worker, 'error', left(x.error, 500), 'dead_reason', x.dead_reason,
        'duration_ms', x.duration_ms)))
FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(
    task_id text, queue text, type text, state text, at timestamptz,
    retry_count integer, max_retry integer, priority integer, labels jsonb,
    payload text, serializer text, created_at timestamptz, process_at timestamptz,
    error text, traceback text, dead_reason text, worker text,
    duration_ms double precision)
-- Concurrent writers lock rows in one order, so two batches never deadlock.
ORDER BY x.task_id
ON CONFLICT (id) DO UPDATE SET
    type = CASE WHEN excluded.state IN ('pending', 'scheduled')
        THEN excluded.type ELSE t.type END,
    state = CASE WHEN {_ADVANCES} THEN excluded.state ELSE t.state END,
    retry_count = CASE WHEN {_ADVANCES} THEN excluded.retry_count ELSE t.retry_count END,
    finished_at = CASE WHEN {_ADVANCES} THEN excluded.finished_at ELSE t.finished_at END,
    dead_reason = CASE WHEN {_ADVANCES} THEN excluded.dead_reason ELSE t.dead_reason END,
    max_retry = greatest(t.max_retry, excluded.max_retry),
    priority = greatest(t.priority, excluded.priority),
    labels = CASE WHEN excluded.labels <> '{{}}' AND (t.labels = '{{}}' OR {_ADVANCES})
        THEN excluded.labels ELSE t.labels END,
    created_at = least(t.created_at, excluded.created_at),
    updated_at = greatest(t.updated_at, excluded.updated_at),
    {_pick("payload")},
    {_pick("serializer")},
    {_pick("process_at")},
    {_pick("started_at")},
    {_pick("last_error")},
    {_pick("traceback")},
    {_pick("worker")},
    {_pick("duration_ms")},
    timeline = strego_timeline_append(t.timeline, excluded.timeline -> 0, %(cap)s)
"""

# A JSON "\u0000" escape not itself escaped: PostgreSQL text and jsonb cannot hold NUL.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def event_row(event: TaskEvent) -> dict[str, Any]:
    """The JSON object one event travels as (keys match the recordset in ``_MERGE``)."""
    return {
        "task_id": event.task_id,
        "queue": event.queue,
        "type": event.type,
        "state": event.state.value,
        "at": event.at.isoformat(),
        "retry_count": event.retry_count,
        "max_retry": event.max_retry,
        "priority": event.priority,
        "labels": dict(event.labels) if event.labels else None,
        "payload": event.payload.hex() if event.payload is not None else None,
        "serializer": event.serializer,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "process_at": event.process_at.isoformat() if event.process_at else None,
        "error": event.error,
        "traceback": event.traceback,
        "dead_reason": event.dead_reason,
        "worker": event.worker,
        "duration_ms": _finite(event.duration_ms),
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def split_rounds(events: Iterable[TaskEvent]) -> list[list[dict[str, Any]]]:
    """Rows grouped so no round holds two events of one task; arrival order is kept."""
    rounds: list[list[dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for event in events:
        index = seen.get(event.task_id, 0)
        seen[event.task_id] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(event_row(event))
    return rounds


def encode_rows(rows: Sequence[dict[str, Any]]) -> str:
    """One round as a JSON array, with NUL characters removed."""
    text = json.dumps(rows, separators=(",", ":"), allow_nan=False, default=str)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1", text)
    return text


async def write_events(conn: psycopg.AsyncConnection[Any], events: Sequence[TaskEvent]) -> None:
    """Merge a batch into ``strego_tasks``; raises psycopg errors (the writer retries)."""
    for rows in split_rounds(events):
        await conn.execute(_MERGE, {"rows": encode_rows(rows), "cap": TIMELINE_CAP})
