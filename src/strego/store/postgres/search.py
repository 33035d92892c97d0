"""Searching the history: filters to SQL, keyset pagination, rows to query values.

Pagination is by keyset, never OFFSET: a page is "the next ``limit`` rows after
(sort value, id) of the last row seen", which an index on (…, sort column, id) serves
in the same time on page 1 and page 20 000. The SQL is assembled only from fixed
fragments; every value travels as a parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from strego.errors import ConfigurationError
from strego.store.query import (
    SortField,
    TaskDetail,
    TaskFilter,
    TaskPage,
    TaskSummary,
    TimelineEntry,
)
from strego.task import TaskState

__all__ = ["build_search", "count_tasks", "get_task", "search_tasks"]

MAX_LIMIT = 1000
_SUMMARY_COLUMNS = (
    "id, queue, type, state, retry_count, max_retry, priority, labels, created_at, "
    "updated_at, process_at, started_at, finished_at, worker, last_error, dead_reason, "
    "duration_ms"
)
# Filter field -> (SQL condition, parameter name); ranges are half-open.
_RANGES = (
    ("created_after", "created_at >= %(created_after)s"),
    ("created_before", "created_at < %(created_before)s"),
    ("finished_after", "finished_at >= %(finished_after)s"),
    ("finished_before", "finished_at < %(finished_before)s"),
)


def where_clause(flt: TaskFilter) -> tuple[list[str], dict[str, Any]]:
    """The WHERE conditions (ANDed) and parameters a filter stands for."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if flt.queue is not None:
        conditions.append("queue = %(queue)s")
        params["queue"] = flt.queue
    if len(flt.states) == 1:  # plain equality lets the planner walk one index range
        conditions.append("state = %(state)s")
        params["state"] = next(iter(flt.states)).value
    elif flt.states:
        conditions.append("state = ANY(%(states)s)")
        params["states"] = sorted(s.value for s in flt.states)
    if flt.type is not None:
        conditions.append("type = %(type)s")
        params["type"] = flt.type
    if flt.labels:
        conditions.append("labels @> %(labels)s")
        params["labels"] = Jsonb(dict(flt.labels))
    for name, condition in _RANGES:
        value = getattr(flt, name)
        if value is not None:
            conditions.append(condition)
            params[name] = value
    if flt.text:
        conditions.append("(id LIKE %(text_prefix)s OR type ILIKE %(text_part)s)")
        escaped = _escape_like(flt.text)
        params["text_prefix"] = escaped + "%"
        params["text_part"] = "%" + escaped + "%"
    return conditions, params


def build_search(
    flt: TaskFilter, *, sort: SortField, descending: bool, limit: int, cursor: str | None
) -> tuple[str, dict[str, Any]]:
    """The SELECT for one page (fetching one extra row to know if another page exists)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigurationError(f"limit must be 1..{MAX_LIMIT}, got {limit}")
    conditions, params = where_clause(flt)
    column = SortField(sort).value
    direction, after = ("DESC", "<") if descending else ("ASC", ">")
    if cursor is not None:
        params["after_value"], params["after_id"] = decode_cursor(cursor, sort, descending)
        conditions.append(f"({column}, id) {after} (%(after_value)s, %(after_id)s)")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params["limit"] = limit + 1
    query = (
        f"SELECT {_SUMMARY_COLUMNS} FROM strego_tasks {where} "
        f"ORDER BY {column} {direction}, id {direction} LIMIT %(limit)s"
    )
    return query, params


async def search_tasks(
    conn: psycopg.AsyncConnection[Any],
    flt: TaskFilter,
    *,
    sort: SortField,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> TaskPage:
    """One page of tasks matching ``flt``, in ``sort`` order, after ``cursor``."""
    query, params = build_search(flt, sort=sort, descending=descending, limit=limit, cursor=cursor)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    rows = await cur.fetchall()
    items = tuple(summary_from_row(row) for row in rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(sort, descending, getattr(last, SortField(sort).value), last.id)
    return TaskPage(items=items, next_cursor=next_cursor)


async def count_tasks(conn: psycopg.AsyncConnection[Any], flt: TaskFilter) -> int:
    """How many tasks match ``flt`` (exact; a full count of a broad filter scans)."""
    conditions, params = where_clause(flt)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cur = await conn.execute(f"SELECT count(*) FROM strego_tasks {where}", params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def get_task(conn: psycopg.AsyncConnection[Any], task_id: str) -> TaskDetail | None:
    """Everything kept about one task, or None."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_SUMMARY_COLUMNS}, payload, serializer, traceback, timeline, "
        "result, result_serializer, workflow_id "
        "FROM strego_tasks WHERE id = %s",
        (task_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    timeline = _timeline(row.pop("timeline"))
    return TaskDetail(
        **_summary_fields(row),
        payload=row["payload"],
        serializer=row["serializer"],
        traceback=row["traceback"],
        timeline=timeline,
        result=row["result"],
        result_serializer=row["result_serializer"],
        workflow_id=row["workflow_id"],
    )


def summary_from_row(row: Mapping[str, Any]) -> TaskSummary:
    return TaskSummary(**_summary_fields(row))


def _summary_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    fields = {name: row[name] for name in TaskSummary.__dataclass_fields__}
    fields["state"] = TaskState(fields["state"])
    return fields


def _timeline(entries: list[dict[str, Any]]) -> tuple[TimelineEntry, ...]:
    parsed = [
        TimelineEntry(
            state=TaskState(entry["state"]),
            at=datetime.fromtimestamp(float(entry["at"]), UTC),
            retry_count=int(entry.get("retry_count", 0)),
            worker=entry.get("worker"),
            error=entry.get("error"),
            dead_reason=entry.get("dead_reason"),
            duration_ms=entry.get("duration_ms"),
        )
        for entry in entries
    ]
    # Stored in arrival order; events from different processes arrive out of order.
    return tuple(sorted(parsed, key=lambda e: e.at))


_MAX_CURSOR = 1024


def encode_cursor(sort: SortField, descending: bool, value: datetime, task_id: str) -> str:
    """An opaque token for "after this row"; bound to the sort it was made for."""
    raw = json.dumps([SortField(sort).value, descending, value.isoformat(), task_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortField, descending: bool) -> tuple[datetime, str]:
    # A real cursor is ~100 characters. RecursionError: deeply nested JSON, which made
    # the UI report the store as unavailable (503) instead of a bad parameter.
    shown = cursor[:40] + ("..." if len(cursor) > 40 else "")
    if len(cursor) > _MAX_CURSOR:
        raise ConfigurationError(f"invalid cursor {shown!r} (too long)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, was_descending, value, task_id = json.loads(raw)
        after = datetime.fromisoformat(value)
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise ConfigurationError(f"invalid cursor {shown!r}") from exc
    if made_for != SortField(sort).value or was_descending != descending:
        raise ConfigurationError("this cursor belongs to a search with another sort order")
    return after, str(task_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
