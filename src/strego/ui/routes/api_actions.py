"""The JSON API's actions (``POST /api/...``).

A task action answers 200 ``{"done": true}``, 404 when the task is unknown, 409 when
its state forbids the action (e.g. deleting a running task: cancel it instead).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.errors import QueueInUseError
from strego.ui import actions
from strego.ui import api_schemas as schemas
from strego.ui.routes.common import json_response, known_queue, query, route, ui

__all__ = ["routes"]


async def _task_action(request: Request, action: str) -> Response:
    inspector = ui(request).inspector
    task_id = str(request.path_params["task_id"])
    queue = query(request, schemas.TaskLookup).queue
    done = await actions.task_action(inspector, action, task_id, queue)
    if not done:
        if await inspector.get_task(task_id, queue) is None:
            raise HTTPException(404, f"task {task_id!r} not found")
        raise HTTPException(409, f"task {task_id!r} is in a state that does not allow {action}")
    return json_response({"task_id": task_id, "action": action, "done": True})


async def retry_task(request: Request) -> Response:
    return await _task_action(request, "retry")


async def delete_task(request: Request) -> Response:
    return await _task_action(request, "delete")


async def cancel_task(request: Request) -> Response:
    return await _task_action(request, "cancel")


async def _queue_action(request: Request, action: str) -> Response:
    queue = await known_queue(request)
    try:
        count = await actions.queue_action(ui(request).inspector, action, queue)
    except QueueInUseError as exc:
        raise HTTPException(409, str(exc)) from None
    return json_response({"queue": queue, "action": action, "count": count})


async def pause(request: Request) -> Response:
    return await _queue_action(request, "pause")


async def resume(request: Request) -> Response:
    return await _queue_action(request, "resume")


async def purge(request: Request) -> Response:
    return await _queue_action(request, "purge")


async def retry_dead(request: Request) -> Response:
    return await _queue_action(request, "retry_dead")


async def purge_dead(request: Request) -> Response:
    return await _queue_action(request, "purge_dead")


async def delete_queue(request: Request) -> Response:
    return await _queue_action(request, "delete")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


async def bulk(request: Request) -> Response:
    queue = await known_queue(request)
    body = await _json_body(request)
    action, ids = body.get("action"), body.get("ids")
    if action not in actions.TASK_ACTIONS:
        raise HTTPException(400, f"action must be one of {', '.join(actions.TASK_ACTIONS)}")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise HTTPException(400, "ids must be a list of task ids")
    try:
        done = await actions.bulk_task_action(ui(request).inspector, action, ids, queue)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return json_response({"queue": queue, "action": action, "requested": len(ids), "done": done})


async def remove_consumer(request: Request) -> Response:
    queue = await known_queue(request)
    consumer = str(request.path_params["consumer"])
    if not await ui(request).inspector.remove_consumer(queue, consumer):
        raise HTTPException(404, f"consumer {consumer!r} not found in queue {queue!r}")
    return json_response({"queue": queue, "consumer": consumer, "removed": True})


def _post(path: str, endpoint: Any, name: str, operation: schemas.Operation) -> BaseRoute:
    return route(path, endpoint, methods=["POST"], name=name, operation=operation)


def routes() -> list[BaseRoute]:
    """This module's routes, each with what the OpenAPI document says of it."""
    queue = "/api/queues/{queue:ident}"
    task = "/api/tasks/{task_id:ident}"
    return [
        _post(f"{task}/retry", retry_task, "api_task_retry", _task_op("retry", _RETRY)),
        _post(f"{task}/delete", delete_task, "api_task_delete", _task_op("delete", _DELETE)),
        _post(f"{task}/cancel", cancel_task, "api_task_cancel", _task_op("cancel", _CANCEL)),
        _post(f"{queue}/pause", pause, "api_queue_pause", _queue_op("pauseQueue", _PAUSE)),
        _post(f"{queue}/resume", resume, "api_queue_resume", _queue_op("resumeQueue", _RESUME)),
        _post(f"{queue}/purge", purge, "api_queue_purge", _queue_op("purgeQueue", _PURGE)),
        _post(
            f"{queue}/dead/retry-all",
            retry_dead,
            "api_dead_retry_all",
            _queue_op("retryAllDead", _RETRY_DEAD, "dead letters"),
        ),
        _post(
            f"{queue}/dead/purge",
            purge_dead,
            "api_dead_purge",
            _queue_op("purgeDead", _PURGE_DEAD, "dead letters"),
        ),
        _post(f"{queue}/delete", delete_queue, "api_queue_delete", _DELETE_QUEUE),
        _post(f"{queue}/tasks/bulk", bulk, "api_bulk", _BULK),
        _post(
            f"{queue}/consumers/{{consumer:ident}}/remove",
            remove_consumer,
            "api_consumer_remove",
            _REMOVE_CONSUMER,
        ),
    ]


_RETRY = "Run a dead, retry or scheduled task now (attempts reset)"
_DELETE = "Delete a task that is not running"
_CANCEL = "Cancel a waiting or running task"
_PAUSE = "Workers stop fetching from the queue"
_RESUME = "Workers fetch from the queue again"
_PURGE = "Delete waiting, scheduled and retry tasks"
_RETRY_DEAD = "Run every dead task of the queue again"
_PURGE_DEAD = "Delete every dead task of the queue"


def _task_op(action: str, summary: str) -> schemas.Operation:
    return schemas.Operation(
        id=f"{action}Task",
        summary=summary,
        tag="tasks",
        reply=schemas.TaskActionReply,
        query=schemas.TaskLookup,
        errors=(400, 401, 403, 404, 409),
    )


def _queue_op(op_id: str, summary: str, tag: str = "queues") -> schemas.Operation:
    return schemas.Operation(
        id=op_id,
        summary=summary,
        tag=tag,
        reply=schemas.QueueActionReply,
        errors=(401, 403, 404),
    )


_DELETE_QUEUE = schemas.Operation(
    id="deleteQueue",
    summary="Delete a queue no live worker serves, with all its tasks",
    tag="queues",
    reply=schemas.QueueActionReply,
    errors=(401, 403, 404, 409),
)
_BULK = schemas.Operation(
    id="bulkTaskAction",
    summary="Retry, delete or cancel many tasks (at most 1000)",
    tag="tasks",
    reply=schemas.BulkReply,
    body=schemas.BulkRequest,
    errors=(400, 401, 403, 404),
)
_REMOVE_CONSUMER = schemas.Operation(
    id="removeConsumer",
    summary="Remove a consumer; its pending tasks are reclaimed",
    tag="workers",
    reply=schemas.ConsumerRemoved,
    errors=(401, 403, 404),
)
