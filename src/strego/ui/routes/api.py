"""The JSON API's reads (``/api/...``); shapes are described in ``openapi.py``."""

from __future__ import annotations

import dataclasses

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.ui import history, queries
from strego.ui.openapi import openapi_document
from strego.ui.routes.common import json_response, known_queue, route, ui
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

__all__ = ["int_param", "routes"]


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}, got {value}")
    return value


async def openapi(request: Request) -> Response:
    return json_response(openapi_document(request.scope.get("root_path", "")))


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


async def _task_list(request: Request, state: str) -> Response:
    queue = await known_queue(request)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    limit = int_param(request, "limit", 50, 1, 500)
    inspector = ui(request).inspector
    info = await inspector.queue_info(queue)
    tasks = await inspector.list_tasks(queue, state, offset=offset, limit=limit)
    return json_response(
        {
            "queue": queue,
            "state": state,
            "offset": offset,
            "limit": limit,
            "total": queries.state_count(info, state),
            "tasks": [task_json(t) for t in tasks],
        }
    )


async def list_tasks(request: Request) -> Response:
    state = request.query_params.get("state", "pending")
    if state not in queries.STATES:
        raise HTTPException(400, f"state must be one of {', '.join(queries.STATES)}")
    return await _task_list(request, state)


async def dead_letters(request: Request) -> Response:
    return await _task_list(request, "dead")


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
    queue = request.query_params.get("queue") or None
    view = await load_task_view(state.inspector, state.history, task_id, queue, state.serializers)
    if view is None:
        raise HTTPException(404, f"task {task_id!r} not found")
    return json_response(task_view_json(view))


async def workers(request: Request) -> Response:
    found = await ui(request).inspector.workers()
    return json_response({"workers": [worker_json(w) for w in found]})


async def throughput(request: Request) -> Response:
    minutes = int_param(request, "minutes", 60, 1, 1440)
    queue = request.query_params.get("queue") or None
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
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route("/api/openapi.json", openapi, name="api_openapi"),
        route("/api/csrf", csrf, name="api_csrf"),
        route("/api/queues", list_queues, name="api_queues"),
        route("/api/queues/{queue:ident}", queue_info, name="api_queue"),
        route("/api/queues/{queue:ident}/tasks", list_tasks, name="api_tasks"),
        route("/api/queues/{queue:ident}/dead", dead_letters, name="api_dead"),
        route("/api/queues/{queue:ident}/consumers", consumers, name="api_consumers"),
        route("/api/tasks/{task_id:ident}", task, name="api_task"),
        route("/api/workers", workers, name="api_workers"),
        route("/api/throughput", throughput, name="api_throughput"),
        route("/api/redis", redis_info, name="api_redis"),
        route("/api/history", history_search, name="api_history"),
    ]
