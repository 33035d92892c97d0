"""The SQL that merges task events into ``strego_tasks``: the merge rules, written once.

:func:`_merge` says, column by column, what a row becomes when one event is merged
into it (which event wins, which values fill what is still unknown); the ordering
rule itself is ``strego_event_advances`` in 0001_initial.sql. Every statement below is
generated from it, so the rules cannot drift apart:

* ``SINGLES_SQL``: one event per row — insert the event, or merge it into the row.
* ``PAIRS_SQL``: two consecutive events of one task (typically "active" then its
  outcome) written as ONE row, so PostgreSQL writes each task once instead of twice.
  The result is exactly "merge the first, then the second": the insert is
  ``merge(first, second)`` and the conflict update ``merge(merge(t, first), second)``.
  ``ON CONFLICT`` only sees the proposed row (``excluded``), so the two events are
  rebuilt from it: the first one carries nothing but its timeline entry (writes.py
  pairs only such events), and the second one's other fields are the proposed row's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["FIELDS", "PAIRS_SQL", "PRIOR_FIELDS", "SINGLES_SQL"]

# One event travels as a JSON array in this order (see writes.event_row); each entry is
# the SQL that reads element {i} of r. Timestamps travel as epoch seconds: a float64
# holds them to well under a microsecond and to_timestamp() rounds back to the value.
FIELDS: tuple[tuple[str, str], ...] = (
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
    ("result", "decode(r->>{i}, 'hex')"),
    ("result_serializer", "r->>{i}"),
    ("workflow_id", "r->>{i}"),
)
# A pair row appends the first event's timeline fields (it carries nothing else).
PRIOR_FIELDS: tuple[tuple[str, str], ...] = (
    ("state", "r->>{i}"),
    ("at", "to_timestamp((r->>{i})::float8)"),
    ("retry_count", "(r->>{i})::integer"),
    ("dead_reason", "r->>{i}"),
    ("worker", "r->>{i}"),
)

COLUMNS = (
    "id", "queue", "type", "state", "retry_count", "max_retry", "priority", "labels",
    "payload", "serializer", "created_at", "process_at", "started_at", "finished_at",
    "updated_at", "last_error", "traceback", "dead_reason", "worker", "duration_ms",
    "timeline", "result", "result_serializer", "workflow_id",
)  # fmt: skip
_MERGED = COLUMNS[2:]  # id and queue never change

# What an event without a value for a field means (an "active" carries no payload...).
_ABSENT = {
    "max_retry": "0",
    "priority": "0",
    "labels": "NULL::jsonb",
    "payload": "NULL::bytea",
    "serializer": "NULL::text",
    "created_at": "NULL::timestamptz",
    "process_at": "NULL::timestamptz",
    "error": "NULL::text",
    "traceback": "NULL::text",
    "dead_reason": "NULL::text",
    "worker": "NULL::text",
    "duration_ms": "NULL::float8",
    "result": "NULL::bytea",
    "result_serializer": "NULL::text",
    "workflow_id": "NULL::text",
}


def _event(f: Mapping[str, str]) -> dict[str, str]:
    """The row one event alone makes, from SQL for its fields (``FIELDS`` names)."""
    v = _ABSENT | dict(f)
    return {
        "id": v["task_id"],
        "queue": v["queue"],
        "type": v["type"],
        "state": v["state"],
        "retry_count": v["retry_count"],
        "max_retry": v["max_retry"],
        "priority": v["priority"],
        "labels": f"coalesce({v['labels']}, '{{}}')",
        "payload": v["payload"],
        "serializer": v["serializer"],
        "created_at": f"coalesce({v['created_at']}, {v['at']})",
        "process_at": v["process_at"],
        "started_at": f"CASE WHEN {v['state']} = 'active' THEN {v['at']} END",
        "finished_at": (
            f"CASE WHEN {v['state']} IN ('completed', 'dead', 'cancelled') THEN {v['at']} END"
        ),
        "updated_at": v["at"],
        "last_error": v["error"],
        "traceback": v["traceback"],
        "dead_reason": v["dead_reason"],
        "worker": v["worker"],
        "duration_ms": v["duration_ms"],
        "timeline": v.get("entries")
        or (
            "jsonb_build_array(jsonb_strip_nulls(jsonb_build_object("
            f"'state', {v['state']}, 'at', extract(epoch FROM {v['at']}),"
            f" 'retry_count', {v['retry_count']}, 'worker', {v['worker']},"
            f" 'error', left({v['error']}, 500), 'dead_reason', {v['dead_reason']},"
            f" 'duration_ms', {v['duration_ms']})))"
        ),
        "result": v["result"],
        "result_serializer": v["result_serializer"],
        "workflow_id": v["workflow_id"],
    }


def _advances(cur: str, new: str) -> str:
    """Does event row ``new`` take row ``cur`` forward? (rule in 0001_initial.sql)

    ``cur`` and ``new`` prefix column names: ``"t."``, or ``"a.p_"`` for flat rows.
    """
    return (
        f"strego_event_advances({cur}state, {cur}retry_count, {cur}finished_at,"
        f" {new}state, {new}retry_count, {new}updated_at)"
    )


def _merge(cur: str, new: str, adv: str | None = None) -> dict[str, str]:
    """THE merge rules: each column of row ``cur`` once event row ``new`` is merged in.

    An event that advances the task sets the state and wins; a late one only fills
    what is still unknown. The timeline gets every event. ``adv``: a column already
    holding ``_advances(cur, new)``, so it is computed once per row.
    """
    adv = adv or _advances(cur, new)

    def take(column: str) -> str:
        return f"CASE WHEN {adv} THEN {new}{column} ELSE {cur}{column} END"

    def pick(column: str) -> str:
        return (
            f"CASE WHEN {adv} THEN coalesce({new}{column}, {cur}{column})"
            f" ELSE coalesce({cur}{column}, {new}{column}) END"
        )

    rules = {
        "type": (
            f"CASE WHEN {new}state IN ('pending', 'scheduled') THEN {new}type ELSE {cur}type END"
        ),
        "max_retry": f"greatest({cur}max_retry, {new}max_retry)",
        "priority": f"greatest({cur}priority, {new}priority)",
        "labels": (
            f"CASE WHEN {new}labels <> '{{}}' AND ({cur}labels = '{{}}' OR {adv})"
            f" THEN {new}labels ELSE {cur}labels END"
        ),
        "created_at": f"least({cur}created_at, {new}created_at)",
        "updated_at": f"greatest({cur}updated_at, {new}updated_at)",
        "timeline": f"strego_timeline_append({cur}timeline, {new}timeline -> 0, %(cap)s)",
    }
    for column in ("state", "retry_count", "finished_at", "dead_reason"):
        rules[column] = take(column)
    for column in ("payload", "serializer", "process_at", "started_at", "last_error"):
        rules[column] = pick(column)
    for column in ("traceback", "worker", "duration_ms", "workflow_id"):
        rules[column] = pick(column)
    # A result belongs to one run: an event that moves the task forward brings its own
    # (none, until it completes; so a new run of the id drops the old one); a late
    # event only fills it in.
    for column in ("result", "result_serializer"):
        rules[column] = (
            f"CASE WHEN {adv} THEN {new}{column} ELSE coalesce({cur}{column}, {new}{column}) END"
        )
    return {column: rules[column] for column in _MERGED}


def _select(columns: Mapping[str, str], prefix: str = "") -> str:
    return ", ".join(f"{sql} AS {prefix}{name}" for name, sql in columns.items())


def _read(fields: tuple[tuple[str, str], ...], start: int, prefix: str) -> str:
    return ", ".join(
        f"{sql.format(i=start + i)} AS {prefix}{name}" for i, (name, sql) in enumerate(fields)
    )


_EVENT = {name: f"x.{name}" for name, _ in FIELDS}


_BATCH = "FROM jsonb_array_elements(%(rows)s::jsonb) AS batch(r)"
_INSERT = f"INSERT INTO strego_tasks AS t ({', '.join(COLUMNS)})"

SINGLES_SQL = f"""{_INSERT}
SELECT {_select(_event(_EVENT))}
FROM (SELECT {_read(FIELDS, 0, "")} {_BATCH}) AS x
-- Concurrent writers lock rows in one order, so two batches never deadlock.
ORDER BY 1
ON CONFLICT (id) DO UPDATE SET
    {", ".join(f"{name} = {sql}" for name, sql in _merge("t.", "excluded.").items())}
"""


def _rebuilt(entry: str, data: Callable[[str], str] | None) -> dict[str, str]:
    """An event rebuilt inside ON CONFLICT from its timeline entry.

    ``data(column)`` reads the proposed row for the fields an entry does not hold;
    None: the event had none of them (see writes._entry_only).
    """
    fields = {
        "task_id": "excluded.id",
        "queue": "excluded.queue",
        "type": "excluded.type",
        "state": f"({entry} ->> 'state')",
        "at": f"to_timestamp(({entry} ->> 'at')::float8)",
        "retry_count": f"({entry} ->> 'retry_count')::integer",
        "dead_reason": f"({entry} ->> 'dead_reason')",
        "worker": f"({entry} ->> 'worker')",
        "entries": f"jsonb_build_array({entry})",
    }
    if data is not None:
        for name, column in _DATA_COLUMNS:
            fields[name] = data(column)
    return fields


# Event fields a timeline entry does not hold, and the column each one lands in.
_DATA_COLUMNS = (
    ("max_retry", "max_retry"),
    ("priority", "priority"),
    ("labels", "labels"),
    ("payload", "payload"),
    ("serializer", "serializer"),
    ("created_at", "created_at"),
    ("process_at", "process_at"),
    ("error", "last_error"),
    ("traceback", "traceback"),
    ("duration_ms", "duration_ms"),
    ("result", "result"),
    ("result_serializer", "result_serializer"),
    ("workflow_id", "workflow_id"),
)
# The first event: only its timeline entry. The second: its entry, and the proposed
# row's other columns, which are its own (the first event had none of them to give).
_FIRST = _rebuilt("excluded.timeline -> 0", None)
_SECOND = _rebuilt("excluded.timeline -> 1", lambda column: f"excluded.{column}")
_PRIOR = {
    "task_id": "x.task_id",
    "queue": "x.queue",
    "type": "x.type",
    **{name: f"x.p_{name}" for name, _ in PRIOR_FIELDS},
}


def _with_advances(source: str, cur: str, new: str, name: str) -> str:
    """``source``'s columns plus whether ``new`` advances ``cur``, computed once a row.

    Each ``OFFSET 0`` keeps PostgreSQL from inlining a level into the next, which
    would evaluate every shared expression (JSON reads, the advance rule) per use.
    """
    return f"(SELECT src.*, {_advances(cur, new)} AS {name} FROM ({source}) AS src OFFSET 0)"


# Insert: the first event's row, then the second merged into it.
_PAIR_EVENTS = (
    f"SELECT {_select(_event(_EVENT), 'e_')}, {_select(_event(_PRIOR), 'p_')}"
    f" FROM (SELECT {_read(FIELDS, 0, '')}, {_read(PRIOR_FIELDS, len(FIELDS), 'p_')}"
    f" {_BATCH} OFFSET 0) AS x"
)
# Conflict: the row with the first event merged in (s_), then the second one (e_).
_REBUILT = f"SELECT {_select(_event(_FIRST), 'p_')}, {_select(_event(_SECOND), 'e_')}"
_AFTER_FIRST = (
    f"SELECT src.*, {_select(_merge('t.', 'src.p_', 'src.adv'), 's_')}"
    f" FROM {_with_advances(_REBUILT, 't.', 'src.p_', 'adv')} AS src"
)

PAIRS_SQL = f"""{_INSERT}
SELECT a.p_id, a.p_queue, {_select(_merge("a.p_", "a.e_", "a.adv"))}
FROM {_with_advances(_PAIR_EVENTS, "src.p_", "src.e_", "adv")} AS a
ORDER BY 1
ON CONFLICT (id) DO UPDATE SET ({", ".join(_MERGED)}) = (
    SELECT {_select(_merge("b.s_", "b.e_", "b.adv2"))}
    FROM {_with_advances(_AFTER_FIRST, "src.s_", "src.e_", "adv2")} AS b)
"""
