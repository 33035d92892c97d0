"""HTML pages for tasks and workers: task detail, dead letters, workers, history."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from strego.ui import history, queries
from strego.ui.routes.common import app_url, flash_redirect, page_cursor, render, route, ui
from strego.ui.task_view import load_task_view

__all__ = ["routes"]


async def task_detail(request: Request) -> Response:
    state = ui(request)
    task_id = str(request.path_params["task_id"])
    queue = request.query_params.get("queue") or None
    view = await load_task_view(state.inspector, state.history, task_id, queue, state.serializers)
    workflow_id = request.query_params.get("workflow")
    if view is None and workflow_id:  # a workflow task held until its dependencies complete
        back = app_url(request, "workflow", workflow_id=workflow_id)
        message = f"Task {task_id} is waiting for its dependencies: it is not enqueued yet."
        return flash_redirect(request, None, back, message)
    if view is None:
        raise HTTPException(
            404,
            f"task {task_id!r} not found in any queue (finished tasks are kept for a while; "
            "a history store keeps them longer)",
        )
    return render(request, "task.html", {"task": view, "nav": "queues"})


async def task_payload(request: Request) -> Response:
    """The whole payload as a download: raw bytes, never rendered by the browser (task
    pages and the API carry only its start when it is large)."""
    state = ui(request)
    task_id = str(request.path_params["task_id"])
    queue = request.query_params.get("queue") or None
    view = await load_task_view(state.inspector, state.history, task_id, queue, state.serializers)
    if view is None:
        raise HTTPException(404, f"task {task_id!r} not found")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", task_id)[:100].strip(".") or "task"
    headers = {
        "content-disposition": f'attachment; filename="{name}.payload"',
        "cache-control": "no-store",
    }
    return Response(view.payload.raw, media_type="application/octet-stream", headers=headers)


async def find_task(request: Request) -> Response:
    """The top bar's search box: a task id, looked up in every queue by the task page
    (an O(1) index read per queue in Redis, then the history store if there is one)."""
    task_id = (request.query_params.get("id") or "").strip()
    if not task_id:
        return RedirectResponse(app_url(request, "dashboard"), status_code=303)
    return RedirectResponse(app_url(request, "task", task_id=task_id), status_code=303)


async def dead_letters(request: Request) -> Response:
    queue = request.query_params.get("queue") or None
    state = ui(request)
    view = await queries.dead_view(
        state.inspector, queue, page_cursor(request), state.config.page_size
    )
    return render(request, "dead.html", {"view": view, "nav": "dead"})


async def workers(request: Request) -> Response:
    view = await queries.workers_view(ui(request).inspector)
    return render(request, "workers.html", {"view": view, "nav": "workers"})


async def history_page(request: Request) -> Response:
    reader = ui(request).history
    if reader is None:
        raise HTTPException(404, "no history store is configured (start the UI with --postgres)")
    params = dict(request.query_params)
    labels = request.query_params.getlist("label")
    context: dict[str, object] = {"nav": "history", "params": params, "labels": labels}
    try:
        query = history.parse_history_query(params, labels)
        context["view"] = await history.search(reader, query)
    except (history.QueryError, history.HistoryUnavailable) as exc:
        context["error"] = str(exc)
        context["view"] = None
    context["queues"] = await ui(request).inspector.known_queues()
    return render(request, "history.html", context)


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route("/tasks/{task_id:ident}", task_detail, name="task"),
        route("/tasks/{task_id:ident}/payload", task_payload, name="task_payload"),
        route("/find", find_task, name="find_task"),
        route("/dead", dead_letters, name="dead"),
        route("/workers", workers, name="workers"),
        route("/history", history_page, name="history"),
    ]
