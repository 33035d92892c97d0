"""Terminal output for admin commands: plain tables, task details, JSON, a progress bar.

Plain text and ANSI only (no curses, no rich): the output must read well in a
terminal, in a CI log and through ``| grep``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import pydantic_core

from strego.records import QueueInfo, TaskRecord, describe_attempts

__all__ = [
    "ProgressBar",
    "ago",
    "queue_table",
    "record_to_json",
    "table",
    "task_detail",
    "task_rows",
]

QUEUE_COLUMNS = (
    "QUEUE",
    "STATE",
    "PENDING",
    "ACTIVE",
    "SCHEDULED",
    "RETRY",
    "DEAD",
    "PROCESSED",
    "FAILED",
    "LATENCY",
)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    cells = [[str(c) for c in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = []
        for i, value in enumerate(row):
            numeric = i > 0 and (value.replace(".", "", 1).isdigit() or value == "-")
            parts.append(value.rjust(widths[i]) if numeric else value.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return lines


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def duration(seconds: float | None) -> str:
    """``None`` → ``-``; else a short human duration (``850ms``, ``12s``, ``3m05s``)."""
    if seconds is None:
        return "-"
    if seconds < 0.01:  # a fast handler: keep significant digits, not "0ms"
        ms = seconds * 1000
        return f"{ms:.2f}ms" if ms < 1 else f"{ms:.1f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``2026-01-02 10:00:00 UTC (12s ago)`` or ``(in 5s)`` for a future time."""
    if moment is None:
        return "-"
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    when = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    relative = f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"
    return f"{when} ({relative})"


def queue_table(infos: Sequence[QueueInfo]) -> list[str]:
    """The queue overview: one row per queue and a TOTAL row when there are several."""
    rows: list[list[object]] = [
        [
            q.name,
            "paused" if q.paused else "active",
            q.pending,
            q.active,
            q.scheduled,
            q.retry,
            q.dead,
            q.processed,
            q.failed,
            duration(q.oldest_pending_s),
        ]
        for q in infos
    ]
    if len(infos) > 1:
        totals = [sum(int(r[i]) for r in rows) for i in range(2, 9)]  # type: ignore[call-overload]
        rows.append(["TOTAL", "", *totals, ""])
    return table(QUEUE_COLUMNS, rows)


def task_rows(records: Sequence[TaskRecord], *, with_queue: bool = False) -> list[str]:
    """A compact listing of tasks (dead letters, mostly); ``with_queue`` adds a column."""
    rows = [
        [
            r.id,
            *([r.queue] if with_queue else []),
            r.type,
            f"{r.attempts} of {r.max_attempts}",
            (r.completed_at or r.created_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S"),
            _one_line(": ".join(x for x in (r.dead_reason, r.last_error) if x), 70),
        ]
        for r in records
    ]
    queue = ("QUEUE",) if with_queue else ()
    return table(("ID", *queue, "TYPE", "ATTEMPTS", "WHEN (UTC)", "REASON: LAST ERROR"), rows)


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def task_detail(record: TaskRecord) -> str:
    """Every field of a TaskRecord, aligned, payload pretty-printed, traceback last."""
    fields: list[tuple[str, object]] = [
        ("id", record.id),
        ("type", record.type),
        ("queue", record.queue),
        ("state", record.state.value + (" (cancel requested)" if record.cancel_requested else "")),
        ("attempts", describe_attempts(record.state, record.retry_count, record.max_retry)),
        ("priority", record.priority),
        ("timeout", duration(record.timeout) if record.timeout else "none"),
        ("unique key", record.unique_key or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(record.labels.items())) or "-"),
        ("created", ago(record.created_at)),
        ("process at", ago(record.process_at)),
        ("started", ago(record.started_at)),
        ("finished", ago(record.completed_at)),
        ("duration", duration(record.duration_s)),
        ("worker", record.worker or "-"),
        ("last error", _last_error(record)),
        ("dead reason", record.dead_reason or "-"),
        ("serializer", record.serializer),
    ]
    if record.workflow_id:
        fields.insert(3, ("workflow", record.workflow_id))
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {value}" for name, value in fields]
    lines += ["", "payload:", _indent(_payload_text(record))]
    if record.state == "completed":
        lines += ["", "result:", _indent(_result_text(record))]
    if record.traceback:
        lines += ["", "traceback:", _indent(record.traceback.rstrip())]
    return "\n".join(lines)


def _last_error(record: TaskRecord) -> str:
    """The error and whose it is: the final attempt's for a dead task, else the last
    failed attempt's (a completed task may have failed before it succeeded)."""
    if not record.last_error:
        return "-"
    if record.state == "dead":
        return f"{record.last_error}  (attempt {record.attempts} of {record.max_attempts})"
    if record.retry_count:
        return f"{record.last_error}  (attempt {record.retry_count} of {record.max_attempts})"
    return record.last_error


def _payload_text(record: TaskRecord) -> str:
    if record.payload is not None or record.payload_bytes in (b"null", b""):
        plain = pydantic_core.to_jsonable_python(record.payload, fallback=repr)
        return json.dumps(plain, indent=2, ensure_ascii=False, sort_keys=True)
    try:
        return record.payload_bytes.decode()
    except UnicodeDecodeError:
        return f"<{len(record.payload_bytes)} bytes> {record.payload_bytes[:64]!r}"


def _result_text(record: TaskRecord) -> str:
    """The kept result, as JSON when decoded; what it is otherwise."""
    if record.result_bytes is None:
        return "none kept (it returned None, result_ttl was 0, or the result expired)"
    if record.result is not None or record.result_bytes == b"null":
        plain = pydantic_core.to_jsonable_python(record.result, fallback=repr)
        return json.dumps(plain, indent=2, ensure_ascii=False, sort_keys=True)
    try:
        return record.result_bytes.decode()
    except UnicodeDecodeError:
        size = len(record.result_bytes)
        return f"<{size} bytes, {record.result_serializer}> {record.result_bytes[:64]!r}"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def record_to_json(record: TaskRecord) -> dict[str, Any]:
    """A TaskRecord as plain JSON types (``--json`` output)."""
    plain: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        plain[field.name] = value
    plain["payload_base64"] = plain.pop("payload_bytes")
    plain["result_base64"] = plain.pop("result_bytes")
    result: dict[str, Any] = pydantic_core.to_jsonable_python(plain, fallback=repr)
    return result


class ProgressBar:
    """``[#####.....]  500/1000  50%`` on one line of a terminal, redrawn in place."""

    def __init__(self, total: int, *, label: str, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self._started = time.monotonic()

    def update(self, done: int) -> None:
        self.done = done
        filled = int(30 * min(done, self.total) / self.total)
        pct = 100 * min(done, self.total) // self.total
        rate = done / max(time.monotonic() - self._started, 1e-6)
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {pct:3d}% {rate:.0f}/s")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
