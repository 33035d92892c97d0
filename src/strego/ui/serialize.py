"""Read models → JSON-ready dicts for the API (shapes documented in ``openapi.py``).

Times are ISO 8601 UTC strings; payloads come as the decoded value when it is JSON
compatible (bytes inside become ``{"$base64": ...}``) plus the raw bytes in base64.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from typing import Any

from strego.inspector import ConsumerInfo, QueueInfo, TaskRecord, ThroughputPoint, WorkerInfo
from strego.records import TaskTypeStats
from strego.store.query import TaskSummary
from strego.ui.attempts import TimelineItem
from strego.ui.payload import (
    DETAIL_PAYLOAD_BYTES,
    LIST_PAYLOAD_BYTES,
    PayloadView,
    jsonable,
    preview,
)
from strego.ui.task_view import TaskView

__all__ = [
    "consumer_json",
    "point_json",
    "queue_json",
    "summary_json",
    "task_json",
    "task_view_json",
    "worker_json",
]


def when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def queue_json(info: QueueInfo) -> dict[str, Any]:
    data = dataclasses.asdict(info)
    data["size"] = info.size
    return data


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def task_json(record: TaskRecord) -> dict[str, Any]:
    """A task as listings return it (Redis record): the payload itself only up to
    ``LIST_PAYLOAD_BYTES``, a one-line preview always (the task endpoint has the rest)."""
    raw = record.payload_bytes
    small = len(raw) <= LIST_PAYLOAD_BYTES
    return {
        "id": record.id,
        "type": record.type,
        "queue": record.queue,
        "state": str(record.state),
        "payload": jsonable(record.payload) if small else None,
        "payload_base64": _b64(raw) if small else None,
        "payload_size": len(raw),
        "payload_truncated": not small,
        "payload_preview": preview(record.payload if small else None, raw),
        "serializer": record.serializer,
        "retry_count": record.retry_count,
        "max_retry": record.max_retry,
        "priority": record.priority,
        "labels": dict(record.labels),
        "timeout": record.timeout,
        "unique_key": record.unique_key,
        "last_error": record.last_error,
        "traceback": record.traceback,
        "dead_reason": record.dead_reason,
        "created_at": when(record.created_at),
        "process_at": when(record.process_at),
        "started_at": when(record.started_at),
        "completed_at": when(record.completed_at),
        "worker": record.worker,
        "cancel_requested": record.cancel_requested,
    }


def _timeline_json(item: TimelineItem) -> dict[str, Any]:
    return {
        "state": item.state,
        "at": when(item.at),
        "attempt": item.attempt,
        "max_attempts": item.max_attempts,
        "started_at": when(item.started_at),
        "worker": item.worker,
        "error": item.error,
        "dead_reason": item.dead_reason,
        "duration_ms": item.duration_ms,
        "note": item.note,
    }


def task_view_json(view: TaskView, payload_url: str) -> dict[str, Any]:
    """The task detail: the merged Redis/history view with its timeline. The payload
    itself up to ``DETAIL_PAYLOAD_BYTES``; ``payload_url`` serves it whole."""
    raw = view.payload.raw
    small = len(raw) <= DETAIL_PAYLOAD_BYTES
    return {
        "id": view.id,
        "type": view.type,
        "queue": view.queue,
        "state": str(view.state),
        "payload": view.payload.value if small else None,
        "payload_base64": _b64(raw) if small else None,
        "payload_size": len(raw),
        "payload_truncated": not small,
        "payload_preview": preview(view.payload.value, raw),
        "payload_url": payload_url,
        "payload_text": view.payload.plain,
        "payload_kind": view.payload.kind,
        "serializer": view.payload.serializer,
        "retry_count": view.retry_count,
        "max_retry": view.max_retry,
        "attempts": view.attempts,
        "max_attempts": view.max_retry + 1,
        "priority": view.priority,
        "labels": dict(view.labels),
        "timeout": view.timeout,
        "unique_key": view.unique_key,
        "last_error": view.last_error,
        "traceback": view.traceback,
        "dead_reason": view.dead_reason,
        "created_at": when(view.created_at),
        "process_at": when(view.process_at),
        "started_at": when(view.started_at),
        "completed_at": when(view.completed_at),
        "worker": view.worker,
        "duration_ms": None if view.duration_s is None else view.duration_s * 1000,
        "cancel_requested": view.cancel_requested,
        "in_redis": view.in_redis,
        "in_history": view.in_history,
        "timeline": [_timeline_json(item) for item in view.timeline],
        **_result_json(view.result),
    }


def _result_json(result: PayloadView | None) -> dict[str, Any]:
    """A completed task's kept result, as payloads are given (within the same bounds)."""
    if result is None:
        return {"result": None, "result_base64": None, "result_size": None,
                "result_serializer": None}  # fmt: skip
    small = len(result.raw) <= DETAIL_PAYLOAD_BYTES
    return {
        "result": result.value if small else None,
        "result_base64": _b64(result.raw) if small else None,
        "result_size": len(result.raw),
        "result_serializer": result.serializer,
    }


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "in_flight": worker.in_flight,
        "started_at": when(worker.started_at),
        "last_heartbeat": when(worker.last_heartbeat),
        "processed": worker.processed,
        "failed": worker.failed,
        "task_types": [type_stats_json(s) for s in worker.task_types],
    }


def type_stats_json(stats: TaskTypeStats) -> dict[str, Any]:
    return {
        "queue": stats.queue,
        "type": stats.type,
        "processed": stats.processed,
        "failed": stats.failed,
        "p50_ms": stats.percentile_ms(0.5),
        "p95_ms": stats.percentile_ms(0.95),
    }


def consumer_json(consumer: ConsumerInfo) -> dict[str, Any]:
    return dataclasses.asdict(consumer)


def point_json(point: ThroughputPoint) -> dict[str, Any]:
    return {"minute": when(point.minute), "processed": point.processed, "failed": point.failed}


def summary_json(summary: TaskSummary) -> dict[str, Any]:
    """One history search row."""
    data = {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)}
    data["state"] = str(summary.state)
    data["labels"] = dict(summary.labels)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = when(value)
    return data
