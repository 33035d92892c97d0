"""HTML form actions: POST, do one thing, 303 back with a one-line message.

Plain forms work without JavaScript. CSRF and read-only are enforced before these run
(``security.SecurityMiddleware``), for every mutating request.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.errors import QueueInUseError
from strego.ui import actions
from strego.ui.routes.common import app_url, flash_redirect, known_queue, route, ui

__all__ = ["routes"]

_PAST = {
    "retry": "queued to run now",
    "delete": "deleted",
    "cancel": "cancelled",
    "pause": "paused",
    "resume": "resumed",
    "purge": "purged",
    "retry_dead": "retried",
    "purge_dead": "purged",
}


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


async def task_action(request: Request) -> Response:
    task_id = str(request.path_params["task_id"])
    action = str(request.path_params["action"])
    if action not in actions.TASK_ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}")
    form = await request.form()
    queue = _field(form, "queue")
    done = await actions.task_action(ui(request).inspector, action, task_id, queue)
    message = (
        f"Task {task_id} {_PAST[action]}."
        if done
        else f"Task {task_id} was not {_PAST[action]}: it is gone or in a state that forbids it."
    )
    fallback = app_url(request, "task", task_id=task_id, query={"queue": queue})
    return flash_redirect(request, _field(form, "next"), fallback, message)


async def bulk_action(request: Request) -> Response:
    queue = await known_queue(request)
    form = await request.form(max_fields=actions.MAX_BULK + 10)  # the ids, and a few more
    action = _field(form, "action") or ""
    ids = [i for i in form.getlist("ids") if isinstance(i, str) and i]
    fallback = app_url(request, "queue", queue=queue)
    if action not in actions.TASK_ACTIONS:
        raise HTTPException(400, f"action must be one of {', '.join(actions.TASK_ACTIONS)}")
    if not ids:
        return flash_redirect(request, _field(form, "next"), fallback, "No task selected.")
    try:
        done = await actions.bulk_task_action(ui(request).inspector, action, ids, queue)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    message = f"{done} of {len(ids)} selected tasks {_PAST[action]}."
    return flash_redirect(request, _field(form, "next"), fallback, message)


async def queue_action(request: Request) -> Response:
    queue = await known_queue(request)
    action = str(request.path_params["action"])
    if action not in actions.QUEUE_ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}")
    form = await request.form()
    try:
        count = await actions.queue_action(ui(request).inspector, action, queue)
    except QueueInUseError as exc:
        fallback = app_url(request, "queue", queue=queue)
        return flash_redirect(request, fallback, fallback, f"Not deleted: {exc}.")
    if action == "delete":
        message = f"Queue {queue} deleted with its {count} task{'s' if count != 1 else ''}."
        return flash_redirect(request, None, app_url(request, "queues"), message)
    if action in ("pause", "resume"):
        message = f"Queue {queue} {_PAST[action]}."
    else:
        noun = "dead task" if action.endswith("_dead") else "waiting task"
        message = f"{count} {noun}{'s' if count != 1 else ''} {_PAST[action]} in {queue}."
    fallback = app_url(request, "queue", queue=queue)
    return flash_redirect(request, _field(form, "next"), fallback, message)


async def remove_consumer(request: Request) -> Response:
    queue = await known_queue(request)
    consumer = str(request.path_params["consumer"])
    form = await request.form()
    removed = await ui(request).inspector.remove_consumer(queue, consumer)
    message = (
        f"Consumer {consumer} removed from {queue}; its pending tasks will be reclaimed."
        if removed
        else f"Consumer {consumer} is not in {queue}."
    )
    fallback = app_url(request, "workers")
    return flash_redirect(request, _field(form, "next"), fallback, message)


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route(
            "/tasks/{task_id:ident}/actions/{action}",
            task_action,
            methods=["POST"],
            name="task_action",
        ),
        route("/queues/{queue:ident}/bulk", bulk_action, methods=["POST"], name="bulk_action"),
        route(
            "/queues/{queue:ident}/actions/{action}",
            queue_action,
            methods=["POST"],
            name="queue_action",
        ),
        route(
            "/queues/{queue:ident}/consumers/{consumer:ident}/remove",
            remove_consumer,
            methods=["POST"],
            name="remove_consumer",
        ),
    ]
