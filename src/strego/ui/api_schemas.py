"""JSON schemas of the API's response bodies (the ``components`` of ``openapi.py``).

Each mirrors one function of ``serialize.py``; the API tests validate real replies
against these, so a field added on one side only fails a test.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BOOL", "INT", "LISTABLE", "NUM", "SCHEMAS", "STR", "nullable", "obj", "ref"]

INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
NUM = {"type": "number"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": sorted(props),
        "additionalProperties": extra,
    }


_TIME = nullable({"type": "string", "format": "date-time"})
STATES = ["pending", "scheduled", "active", "completed", "retry", "dead", "cancelled"]
LISTABLE = ["pending", "active", "scheduled", "retry", "dead", "completed"]
_COUNTS = ("pending", "active", "scheduled", "retry", "dead", "completed")

_TASK_FIELDS: dict[str, Any] = {
    "id": STR,
    "type": STR,
    "queue": STR,
    "state": {"type": "string", "enum": STATES},
    "payload": {"description": "decoded payload (JSON compatible; bytes as {$base64})"},
    "payload_base64": nullable(STR),
    "serializer": nullable(STR),
    "retry_count": INT,
    "max_retry": INT,
    "priority": INT,
    "labels": {"type": "object", "additionalProperties": STR},
    "timeout": nullable(NUM),
    "unique_key": nullable(STR),
    "last_error": nullable(STR),
    "traceback": nullable(STR),
    "dead_reason": nullable(STR),
    "created_at": _TIME,
    "process_at": _TIME,
    "started_at": _TIME,
    "completed_at": _TIME,
    "worker": nullable(STR),
    "cancel_requested": BOOL,
}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": STR}),
    "Queue": obj(
        {
            "name": STR,
            **{name: INT for name in _COUNTS},
            "paused": BOOL,
            "enqueued": INT,
            "processed": INT,
            "failed": INT,
            "retried": INT,
            "dead_total": INT,
            "cancelled": INT,
            "oldest_pending_s": nullable(NUM),
            "size": INT,
        }
    ),
    "Totals": obj({name: INT for name in ("queues", "paused", *_COUNTS, "processed", "failed")}),
    "Task": obj(_TASK_FIELDS),
    "TimelineEntry": obj(
        {
            "state": STR,
            "at": _TIME,
            "retry_count": nullable(INT),
            "worker": nullable(STR),
            "error": nullable(STR),
            "dead_reason": nullable(STR),
            "duration_ms": nullable(NUM),
        }
    ),
    "TaskDetail": obj(
        {
            **_TASK_FIELDS,
            "payload_text": {"type": "string", "description": "the payload as the UI shows it"},
            "payload_kind": {"type": "string", "enum": ["json", "text", "hex", "empty"]},
            "payload_size": INT,
            "in_redis": BOOL,
            "in_history": BOOL,
            "timeline": {"type": "array", "items": ref("TimelineEntry")},
        }
    ),
    "TaskList": obj(
        {
            "queue": STR,
            "state": {"type": "string", "enum": LISTABLE},
            "offset": INT,
            "limit": INT,
            "total": INT,
            "tasks": {"type": "array", "items": ref("Task")},
        }
    ),
    "Worker": obj(
        {
            "name": STR,
            "host": STR,
            "pid": INT,
            "queues": {"type": "array", "items": STR},
            "concurrency": INT,
            "in_flight": INT,
            "started_at": _TIME,
            "last_heartbeat": _TIME,
        }
    ),
    "Consumer": obj({"name": STR, "pending": INT, "idle_s": NUM, "alive": BOOL}),
    "ThroughputPoint": obj({"minute": _TIME, "processed": INT, "failed": INT}),
    "HistoryItem": obj(
        {
            "id": STR,
            "queue": STR,
            "type": STR,
            "state": {"type": "string", "enum": STATES},
            "retry_count": INT,
            "max_retry": INT,
            "priority": INT,
            "labels": {"type": "object", "additionalProperties": STR},
            "created_at": _TIME,
            "updated_at": _TIME,
            "process_at": _TIME,
            "started_at": _TIME,
            "finished_at": _TIME,
            "worker": nullable(STR),
            "last_error": nullable(STR),
            "dead_reason": nullable(STR),
            "duration_ms": nullable(NUM),
        }
    ),
}
