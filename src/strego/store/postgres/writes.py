"""How a batch of task events becomes rows: few multi-row upserts, each row once.

The merge rules live in SQL (merge.py and ``strego_event_advances`` in
0001_initial.sql) so that every writer — a client, many workers — applies the same
ones, whatever order their batches arrive in. ``INSERT .. ON CONFLICT`` may touch a
row only once per statement, so a batch is split into rounds: round k holds the k-th
row of each task, in arrival order. A fast task's "active" and its outcome usually
share a batch; they travel as ONE pair row (merge.PAIRS_SQL), so PostgreSQL writes
the task once, not twice. Python only decides what may be paired (consecutive events
of one task, the first carrying nothing but its timeline entry); which event wins is
left to SQL. Each round is one statement per row kind with one parameter: a JSON
array of rows, each a flat array (cheaper to build on the event loop than objects).

Writes are idempotent: replaying a batch (after a commit whose acknowledgement was
lost) changes nothing, because a state never moves sideways and the timeline ignores
an entry it already holds. That is why rounds need not share a transaction.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from strego.events import TaskEvent
from strego.store.postgres.config import TIMELINE_CAP
from strego.store.postgres.merge import PAIRS_SQL, SINGLES_SQL

__all__ = ["Round", "encode_rows", "event_row", "split_rounds", "write_events"]

# A JSON "\u0000" escape not itself escaped: PostgreSQL text and jsonb cannot hold NUL.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def event_row(event: TaskEvent) -> tuple[Any, ...]:
    """The JSON array one event travels as, in ``merge.FIELDS`` order.

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
        event.result.hex() if event.result is not None else None,
        event.result_serializer,
        event.workflow_id,
    )


@dataclasses.dataclass(slots=True)
class Round:
    """Rows of one statement round: at most one row per task in the whole round."""

    singles: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    pairs: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)


def _entry_only(event: TaskEvent) -> bool:
    # Nothing beyond what its timeline entry holds (what a worker's "active" carries),
    # so the pair's SQL can rebuild it from that entry alone.
    return (
        event.payload is None
        and event.serializer is None
        and not event.labels
        and event.created_at is None
        and event.process_at is None
        and event.error is None
        and event.traceback is None
        and event.duration_ms is None
        and event.max_retry == 0
        and event.priority == 0
        and event.result is None
        and event.result_serializer is None
        and event.workflow_id is None
    )


def _pairable(first: TaskEvent, second: TaskEvent) -> bool:
    """May these consecutive events of one task travel as one pair row?"""
    return (
        _entry_only(first)
        and first.queue == second.queue
        and first.type == second.type
        # Identical entries would merge into one; the pair must keep two.
        and (first.state, first.at) != (second.state, second.at)
    )


def split_rounds(events: Iterable[TaskEvent]) -> list[Round]:
    """Rows grouped so no round holds two rows of one task; arrival order is kept."""
    by_task: dict[str, list[TaskEvent]] = {}
    for event in events:
        by_task.setdefault(event.task_id, []).append(event)
    rounds: list[Round] = []
    for task_events in by_task.values():
        index = position = 0
        while position < len(task_events):
            if index == len(rounds):
                rounds.append(Round())
            event = task_events[position]
            following = task_events[position + 1] if position + 1 < len(task_events) else None
            if following is not None and _pairable(event, following):
                rounds[index].pairs.append((*event_row(following), *_prior_row(event)))
                position += 2
            else:
                rounds[index].singles.append(event_row(event))
                position += 1
            index += 1
    return rounds


def _prior_row(event: TaskEvent) -> tuple[Any, ...]:
    """The first event of a pair, in ``merge.PRIOR_FIELDS`` order."""
    return (
        event.state.value,
        event.at.timestamp(),
        event.retry_count,
        event.dead_reason,
        event.worker,
    )


def encode_rows(rows: Sequence[tuple[Any, ...]]) -> str:
    """One round as a JSON array, with NUL characters removed."""
    text = json.dumps(rows, separators=(",", ":"), allow_nan=False, default=str)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1", text)
    return text


async def write_events(conn: psycopg.AsyncConnection[Any], events: Sequence[TaskEvent]) -> None:
    """Merge a batch into ``strego_tasks``; raises psycopg errors (the writer retries)."""
    for round_ in split_rounds(events):
        for sql, rows in ((SINGLES_SQL, round_.singles), (PAIRS_SQL, round_.pairs)):
            if rows:
                await conn.execute(sql, {"rows": encode_rows(rows), "cap": TIMELINE_CAP})
