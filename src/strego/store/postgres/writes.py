"""How a batch of task events becomes rows: one multi-row upsert per "round".

The merge rules live in SQL (``strego_event_advances`` in 0001_initial.sql) so that
every writer — a client, many workers — applies the same ones, whatever order their
batches arrive in. ``INSERT .. ON CONFLICT`` may touch a row only once per
statement, so a batch is split into rounds: round k holds the k-th event of each task,
in arrival order. Each round is one statement with one parameter: a JSON array of
events, each a flat array (cheaper to build on the event loop than objects).

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


# One event travels as a JSON array in this order (see event_row); each entry is the
# SQL that reads element {i} of r. Timestamps travel as epoch seconds: a float64 holds
# them to well under a microsecond and to_timestamp() rounds back to the exact value.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("task_id", "r->>{i}"),
    ("queue", "r->>{i}"),
    ("type", "r->>{i}"),
    ("state", "r->>{i}"),
    ("at", "to_timestamp((r->>{i})::float8)"),
    ("retry_count", "(r->>{i})::integer"),
    ("max_retry", "(r->>{i})::integer"),
    ("priority", "(r->>{i})::integer"),
    ("labels", "nullif(r->{i}, 'null')"),
    ("payload", "decode(r->>{i}, 'hex')"),
    ("serializer", "r->>{i}"),
    ("created_at", "to_timestamp((r->>{i})::float8)"),
    ("process_at", "to_timestamp((r->>{i})::float8)"),
    ("error", "r->>{i}"),
    ("traceback", "r->>{i}"),
    ("dead_reason", "r->>{i}"),
    ("worker", "r->>{i}"),
    ("duration_ms", "(r->>{i})::float8"),
)
_INCOMING = (
    "SELECT "
    + ", ".join(f"{sql.format(i=i)} AS {name}" for i, (name, sql) in enumerate(_FIELDS))
    + " FROM jsonb_array_elements(%(rows)s::jsonb) AS batch(r)"
)

_MERGE = f"""
INSERT INTO strego_tasks AS t (
    id, queue, type, state, retry_count, max_retry, priority, labels, payload, serializer,
    created_at, process_at, started_at, finished_at, updated_at,
    last_error, traceback, dead_reason, worker, duration_ms, timeline)
SELECT
    x.task_id, x.queue, x.type, x.state, x.retry_count, x.max_retry, x.priority,
    coalesce(x.labels, '{{}}'), x.payload, x.serializer,
    coalesce(x.created_at, x.at), x.process_at,
    CASE WHEN x.state = 'active' THEN x.at END,
    CASE WHEN x.state IN ('completed', 'dead', 'cancelled') THEN x.at END,
    x.at, x.error, x.traceback, x.dead_reason, x.worker, x.duration_ms,
    jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
        'state', x.state, 'at', extract(epoch FROM x.at), 'retry_count', x.retry_count,
        'worker', x.worker, 'error', left(x.error, 500), 'dead_reason', x.dead_reason,
        'duration_ms', x.duration_ms)))
FROM ({_INCOMING}) AS x
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


def event_row(event: TaskEvent) -> tuple[Any, ...]:
    """The JSON array one event travels as, in ``_FIELDS`` order.

    This runs on the event loop for every event, so it is a flat tuple: building it
    costs about a third of a dict with keys, and timestamps skip ``isoformat``.
    """
    duration = event.duration_ms
    return (
        event.task_id,
        event.queue,
        event.type,
        event.state.value,
        event.at.timestamp(),
        event.retry_count,
        event.max_retry,
        event.priority,
        dict(event.labels) if event.labels else None,
        event.payload.hex() if event.payload is not None else None,
        event.serializer,
        event.created_at.timestamp() if event.created_at else None,
        event.process_at.timestamp() if event.process_at else None,
        event.error,
        event.traceback,
        event.dead_reason,
        event.worker,
        duration if duration is None or math.isfinite(duration) else None,
    )


def split_rounds(events: Iterable[TaskEvent]) -> list[list[tuple[Any, ...]]]:
    """Rows grouped so no round holds two events of one task; arrival order is kept."""
    rounds: list[list[tuple[Any, ...]]] = []
    seen: dict[str, int] = {}
    for event in events:
        index = seen.get(event.task_id, 0)
        seen[event.task_id] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(event_row(event))
    return rounds


def encode_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """One round as a JSON array, with NUL characters removed."""
    text = json.dumps(rows, separators=(",", ":"), allow_nan=False, default=str)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1", text)
    return text


async def write_events(conn: psycopg.AsyncConnection[Any], events: Sequence[TaskEvent]) -> None:
    """Merge a batch into ``strego_tasks``; raises psycopg errors (the writer retries)."""
    for rows in split_rounds(events):
        await conn.execute(_MERGE, {"rows": encode_rows(rows), "cap": TIMELINE_CAP})
