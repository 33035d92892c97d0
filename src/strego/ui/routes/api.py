"""The JSON API's reads (``/api/...``); shapes are described in ``openapi.py``."""

from __future__ import annotations

import dataclasses

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.ui import api_schemas as schemas
from strego.ui import history, queries
from strego.ui.openapi import openapi_document
from strego.ui.routes.common import app_url, json_response, known_queue, query, route, ui
from strego.ui.serialize import (
    consumer_json,
    point_json,
    queue_json,
    summary_json,
    task_json,
    task_view_json,
    worker_json,
)
from strego.ui.task_view import load_task_view

__all__ = ["routes"]


async def openapi(request: Request) -> Response:
    return json_response(openapi_document(request.app.routes, request.scope.get("root_path", "")))


async def csrf(request: Request) -> Response:
    return json_response({"csrf_token": request.state.csrf_token})


async def list_queues(request: Request) -> Response:
    found = await queries.all_queues(ui(request).inspector)
    data = {
        "queues": [queue_json(q) for q in found],
        "totals": dataclasses.asdict(queries.totals(found)),
    }
    return json_response(data)


async def queue_info(request: Request) -> Response:
    queue = await known_queue(request)
    return json_response(queue_json(await ui(request).inspector.queue_info(queue)))


async def _task_list(request: Request, state: str, paging: schemas.Paging) -> Response:
    queue = await known_queue(request)
    offset, limit, cursor = paging.offset, paging.limit, paging.cursor
    if offset and cursor:
        raise HTTPException(400, "give offset or cursor, not both")
    inspector = ui(request).inspector
    info = await inspector.queue_info(queue)
    try:
        page = await queries.task_page(inspector, queue, state, offset, cursor, limit)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return json_response(
        {
            "queue": queue,
            "state": state,
            "offset": offset,
            "limit": limit,
            "total": queries.state_count(info, state),
            "tasks": [task_json(t) for t in page.records],
            "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor,
        }
    )


async def list_tasks(request: Request) -> Response:
    params = query(request, schemas.TaskListQuery)
    return await _task_list(request, params.state, params)


async def dead_letters(request: Request) -> Response:
    return await _task_list(request, "dead", query(request, schemas.Paging))


async def consumers(request: Request) -> Response:
    queue = await known_queue(request)
    inspector = ui(request).inspector
    found = await inspector.consumers(queue)
    return json_response(
        {
            "queue": queue,
            "group": await inspector.group(queue),
            "consumers": [consumer_json(c) for c in found],
        }
    )


async def task(request: Request) -> Response:
    state = ui(request)
    task_id = str(request.path_params["task_id"])
    queue = query(request, schemas.TaskLookup).queue
    view = await load_task_view(state.inspector, state.history, task_id, queue, state.serializers)
    if view is None:
        raise HTTPException(404, f"task {task_id!r} not found")
    url = app_url(request, "task_payload", task_id=view.id, query={"queue": view.queue})
    return json_response(task_view_json(view, url))


async def workers(request: Request) -> Response:
    found = await ui(request).inspector.workers()
    return json_response({"workers": [worker_json(w) for w in found]})


async def throughput(request: Request) -> Response:
    params = query(request, schemas.ThroughputQuery)
    queue, minutes = params.queue, params.minutes
    points = await ui(request).inspector.throughput(queue, minutes)
    return json_response(
        {"queue": queue, "minutes": minutes, "points": [point_json(p) for p in points]}
    )


async def redis_info(request: Request) -> Response:
    return json_response(await ui(request).inspector.redis_info())


async def history_search(request: Request) -> Response:
    reader = ui(request).history
    if reader is None:
        raise HTTPException(404, "no history store is configured")
    labels = request.query_params.getlist("label")
    try:
        query = history.parse_history_query(dict(request.query_params), labels)
        view = await history.search(reader, query)
    except history.QueryError as exc:
        raise HTTPException(400, str(exc)) from None
    except history.HistoryUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return json_response(
        {
            "total": view.total,
            "next_cursor": view.page.next_cursor,
            "items": [summary_json(s) for s in view.page.items],
        }
    )


def routes() -> list[BaseRoute]:
    """This module's routes, each with what the OpenAPI document says of it."""
    return [
        route("/api/openapi.json", openapi, name="api_openapi"),
        route("/api/csrf", csrf, name="api_csrf", operation=_CSRF),
        route("/api/queues", list_queues, name="api_queues", operation=_QUEUES),
        route("/api/queues/{queue:ident}", queue_info, name="api_queue", operation=_QUEUE),
        route("/api/queues/{queue:ident}/tasks", list_tasks, name="api_tasks", operation=_TASKS),
        route("/api/queues/{queue:ident}/dead", dead_letters, name="api_dead", operation=_DEAD),
        route(
            "/api/queues/{queue:ident}/consumers",
            consumers,
            name="api_consumers",
            operation=_CONSUMERS,
        ),
        route("/api/tasks/{task_id:ident}", task, name="api_task", operation=_TASK),
        route("/api/workers", workers, name="api_workers", operation=_WORKERS),
        route("/api/throughput", throughput, name="api_throughput", operation=_THROUGHPUT),
        route("/api/redis", redis_info, name="api_redis", operation=_REDIS),
        route("/api/history", history_search, name="api_history", operation=_HISTORY),
    ]


Op = schemas.Operation
_CSRF = Op(
    id="csrf",
    summary="A CSRF token (also set as the strego_csrf cookie)",
    tag="meta",
    reply=schemas.CsrfReply,
)
_QUEUES = Op(
    id="listQueues",
    summary="Every known queue with its counts",
    tag="queues",
    reply=schemas.QueueList,
)
_QUEUE = Op(
    id="getQueue",
    summary="One queue's counts",
    tag="queues",
    reply=schemas.QueueDetail,
    errors=(401, 404),
)
_TASKS = Op(
    id="listTasks",
    summary="One page of a queue's tasks in one state",
    tag="tasks",
    reply=schemas.TaskList,
    query=schemas.TaskListQuery,
    errors=(400, 401, 404),
)
_DEAD = Op(
    id="listDead",
    summary="Dead letters of a queue, newest first",
    tag="dead letters",
    reply=schemas.TaskList,
    query=schemas.Paging,
    errors=(400, 401, 404),
)
_CONSUMERS = Op(
    id="listConsumers",
    summary="The consumer group's consumers on this queue",
    tag="workers",
    reply=schemas.ConsumerList,
    errors=(401, 404),
)
_TASK = Op(
    id="getTask",
    summary="One task: Redis's record merged with history",
    tag="tasks",
    reply=schemas.TaskDetail,
    query=schemas.TaskLookup,
    errors=(400, 401, 404),
)
_WORKERS = Op(
    id="listWorkers", summary="Live worker servers", tag="workers", reply=schemas.WorkerList
)
_THROUGHPUT = Op(
    id="throughput",
    summary="Processed/failed per minute, oldest first",
    tag="queues",
    reply=schemas.Throughput,
    query=schemas.ThroughputQuery,
    errors=(400, 401),
)
_REDIS = Op(id="redisInfo", summary="Redis server summary", tag="meta", reply=schemas.RedisInfo)
_HISTORY = Op(
    id="searchHistory",
    summary="Search the history store",
    tag="history",
    reply=schemas.HistoryPage,
    query=schemas.HistoryQuery,
    errors=(400, 401, 404, 503),
)
