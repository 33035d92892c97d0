"""The OpenAPI 3.0 document for ``/api/`` (hand-written; tests check it against replies).

Kept as data next to the serializers it describes (``serialize.py``); a schema test
validates real responses against it, so the two cannot drift apart silently.
"""

from __future__ import annotations

import copy
from typing import Any

import strego
from strego.ui.api_schemas import BOOL, INT, LISTABLE, SCHEMAS, STR, nullable, obj, ref

__all__ = ["openapi_document"]

_IDENT_NOTE = ' A "/" in the value travels as "~2F" and a "~" as "~7E".'


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description + _IDENT_NOTE,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_QUEUE = _path_param("queue", "Queue name.")
_TASK = _path_param("task_id", "Task id.")
_CONSUMER = _path_param("consumer", "Consumer name in the queue's consumer group.")
_IN_QUEUE = _query("queue", STR, "Look only in this queue (default: every known queue).")
_PAGING = [
    _query("offset", {"type": "integer", "minimum": 0, "maximum": 10_000_000}, "Rows to skip."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Rows to return."),
]
_ERRORS = {
    400: "Invalid parameter.",
    401: "Authentication required.",
    403: "CSRF token missing/invalid, or the UI is read-only.",
    404: "Not found (unknown queue, task or consumer; or no history store).",
    409: "The task's state does not allow this action.",
    503: "Redis or the history store is unavailable.",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    op_id: str,
    summary: str,
    tag: str,
    result: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (401,),
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses = {"200": _json(result, "OK")}
    for code in errors:
        responses[str(code)] = _json(ref("Error"), _ERRORS[code])
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "parameters": params or [],
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _action(
    op_id: str, summary: str, tag: str, result: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    kw.setdefault("errors", (401, 403, 404))
    return {"post": _op(op_id, summary, tag, result, **kw)}


_QUEUE_RESULT = obj({"queue": STR, "action": STR, "count": INT})
_TASK_RESULT = obj({"task_id": STR, "action": STR, "done": BOOL})
_HISTORY_PARAMS = [
    _query("queue", STR, "Only this queue."),
    _query("state", STR, "Comma-separated states, e.g. dead,retry."),
    _query("type", STR, "Exact task type."),
    {
        **_query("label", {"type": "array", "items": STR}, "key=value; repeat for several."),
        "explode": True,
        "style": "form",
    },
    _query("q", STR, "Task id prefix or a substring of the type."),
    _query("created_after", STR, "ISO 8601; naive values are UTC."),
    _query("created_before", STR, "ISO 8601; naive values are UTC."),
    _query("finished_after", STR, "ISO 8601; naive values are UTC."),
    _query("finished_before", STR, "ISO 8601; naive values are UTC."),
    _query("sort", {"type": "string", "enum": ["created_at", "updated_at"]}, "Sort column."),
    _query("order", {"type": "string", "enum": ["desc", "asc"]}, "Sort direction."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size."),
    _query("cursor", STR, "next_cursor of the previous page."),
]

PATHS: dict[str, Any] = {
    "/api/csrf": {
        "get": _op(
            "csrf",
            "A CSRF token (also set as the strego_csrf cookie)",
            "meta",
            obj({"csrf_token": STR}),
        )
    },
    "/api/queues": {
        "get": _op(
            "listQueues",
            "Every known queue with its counts",
            "queues",
            obj({"queues": {"type": "array", "items": ref("Queue")}, "totals": ref("Totals")}),
        )
    },
    "/api/queues/{queue}": {
        "get": _op(
            "getQueue",
            "One queue's counts",
            "queues",
            ref("Queue"),
            params=[_QUEUE],
            errors=(401, 404),
        )
    },
    "/api/queues/{queue}/tasks": {
        "get": _op(
            "listTasks",
            "One page of a queue's tasks in one state",
            "tasks",
            ref("TaskList"),
            params=[
                _QUEUE,
                _query("state", {"type": "string", "enum": LISTABLE}, "Default pending."),
                *_PAGING,
            ],
            errors=(400, 401, 404),
        )
    },
    "/api/queues/{queue}/dead": {
        "get": _op(
            "listDead",
            "Dead letters of a queue, newest first",
            "dead letters",
            ref("TaskList"),
            params=[_QUEUE, *_PAGING],
            errors=(400, 401, 404),
        )
    },
    "/api/queues/{queue}/consumers": {
        "get": _op(
            "listConsumers",
            "The consumer group's consumers on this queue",
            "workers",
            obj(
                {
                    "queue": STR,
                    "group": STR,
                    "consumers": {"type": "array", "items": ref("Consumer")},
                }
            ),
            params=[_QUEUE],
            errors=(401, 404),
        )
    },
    "/api/tasks/{task_id}": {
        "get": _op(
            "getTask",
            "One task: Redis's record merged with history",
            "tasks",
            ref("TaskDetail"),
            params=[_TASK, _IN_QUEUE],
            errors=(401, 404),
        )
    },
    "/api/workers": {
        "get": _op(
            "listWorkers",
            "Live worker servers",
            "workers",
            obj({"workers": {"type": "array", "items": ref("Worker")}}),
        )
    },
    "/api/throughput": {
        "get": _op(
            "throughput",
            "Processed/failed per minute, oldest first",
            "queues",
            obj(
                {
                    "queue": nullable(STR),
                    "minutes": INT,
                    "points": {"type": "array", "items": ref("ThroughputPoint")},
                }
            ),
            params=[
                _query("queue", STR, "One queue (default all)."),
                _query(
                    "minutes",
                    {"type": "integer", "minimum": 1, "maximum": 1440},
                    "Window, default 60.",
                ),
            ],
            errors=(400, 401),
        )
    },
    "/api/redis": {
        "get": _op(
            "redisInfo",
            "Redis server summary",
            "meta",
            {"type": "object", "additionalProperties": True},
        )
    },
    "/api/history": {
        "get": _op(
            "searchHistory",
            "Search the history store",
            "history",
            obj(
                {
                    "total": INT,
                    "next_cursor": nullable(STR),
                    "items": {"type": "array", "items": ref("HistoryItem")},
                }
            ),
            params=_HISTORY_PARAMS,
            errors=(400, 401, 404, 503),
        )
    },
    "/api/tasks/{task_id}/retry": _action(
        "retryTask",
        "Run a dead, retry or scheduled task now (attempts reset)",
        "tasks",
        _TASK_RESULT,
        params=[_TASK, _IN_QUEUE],
        errors=(401, 403, 404, 409),
    ),
    "/api/tasks/{task_id}/delete": _action(
        "deleteTask",
        "Delete a task that is not running",
        "tasks",
        _TASK_RESULT,
        params=[_TASK, _IN_QUEUE],
        errors=(401, 403, 404, 409),
    ),
    "/api/tasks/{task_id}/cancel": _action(
        "cancelTask",
        "Cancel a waiting or running task",
        "tasks",
        _TASK_RESULT,
        params=[_TASK, _IN_QUEUE],
        errors=(401, 403, 404, 409),
    ),
    "/api/queues/{queue}/pause": _action(
        "pauseQueue",
        "Workers stop fetching from the queue",
        "queues",
        _QUEUE_RESULT,
        params=[_QUEUE],
    ),
    "/api/queues/{queue}/resume": _action(
        "resumeQueue",
        "Workers fetch from the queue again",
        "queues",
        _QUEUE_RESULT,
        params=[_QUEUE],
    ),
    "/api/queues/{queue}/purge": _action(
        "purgeQueue",
        "Delete waiting, scheduled and retry tasks",
        "queues",
        _QUEUE_RESULT,
        params=[_QUEUE],
    ),
    "/api/queues/{queue}/dead/retry-all": _action(
        "retryAllDead",
        "Run every dead task of the queue again",
        "dead letters",
        _QUEUE_RESULT,
        params=[_QUEUE],
    ),
    "/api/queues/{queue}/dead/purge": _action(
        "purgeDead",
        "Delete every dead task of the queue",
        "dead letters",
        _QUEUE_RESULT,
        params=[_QUEUE],
    ),
    "/api/queues/{queue}/tasks/bulk": _action(
        "bulkTaskAction",
        "Retry, delete or cancel many tasks (at most 1000)",
        "tasks",
        obj({"queue": STR, "action": STR, "requested": INT, "done": INT}),
        params=[_QUEUE],
        errors=(400, 401, 403, 404),
        body=obj(
            {
                "action": {"type": "string", "enum": ["retry", "delete", "cancel"]},
                "ids": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "maxItems": 1000,
                },
            }
        ),
    ),
    "/api/queues/{queue}/consumers/{consumer}/remove": _action(
        "removeConsumer",
        "Remove a consumer; its pending tasks are reclaimed",
        "workers",
        obj({"queue": STR, "consumer": STR, "removed": BOOL}),
        params=[_QUEUE, _CONSUMER],
    ),
}

_DESCRIPTION = """Read and manage strego queues, tasks, dead letters and workers.

Authentication (when configured): HTTP basic, or `Authorization: Bearer TOKEN`.
Every POST needs a CSRF token unless it is authenticated by a bearer token: send the
`X-CSRF-Token` header with the value of the `strego_csrf` cookie (GET `/api/csrf` returns
it and sets the cookie). A read-only UI answers 403 to every POST.
"""


def openapi_document(root_path: str = "") -> dict[str, Any]:
    """The document, with ``servers`` pointing at where this app is mounted."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "strego UI API",
            "version": strego.__version__,
            "description": _DESCRIPTION,
        },
        "servers": [{"url": root_path or "/"}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    }
