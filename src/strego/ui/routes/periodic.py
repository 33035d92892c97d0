"""The Periodic page, its form actions and its JSON API (``/api/periodic``).

Every action is a POST: CSRF and read-only are enforced before these run
(``security.SecurityMiddleware``), like every other mutating route.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.errors import PeriodicNotFoundError
from strego.periodic.info import PeriodicInfo
from strego.ui import api_schemas as schemas
from strego.ui.routes.common import app_url, flash_redirect, json_response, query, render, route, ui

__all__ = ["routes"]

ACTIONS = ("pause", "resume", "trigger", "delete")
_PAST = {"pause": "paused", "resume": "resumed", "trigger": "triggered", "delete": "deleted"}


class PeriodicQuery(schemas.Query):
    queue: str | None = None


class PeriodicRunReply(schemas.Reply):
    tick: datetime
    at: datetime
    outcome: str
    task_id: str


class PeriodicReply(schemas.Reply):
    name: str
    type: str
    queue: str
    cron: str | None
    every: float | None
    tz: str
    catchup: str
    overlap: str
    next_run: datetime | None
    next_run_local: str | None  # in the schedule's zone
    last_run: datetime | None
    last_task_id: str | None
    paused: bool
    orphaned: bool
    error: str | None
    runs: list[PeriodicRunReply]


class PeriodicList(schemas.Reply):
    schedules: list[PeriodicReply]


class PeriodicActionReply(schemas.Reply):
    queue: str
    name: str
    action: Literal["pause", "resume", "trigger", "delete"]
    task_id: str | None  # the run a trigger enqueued


def in_zone(moment: datetime | None, tz: str) -> str | None:
    """``2026-03-29 09:00 CEST``: a time as the schedule's own zone reads it."""
    if moment is None:
        return None
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError):
        return None
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def periodic_json(info: PeriodicInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "type": info.type,
        "queue": info.queue,
        "cron": info.cron,
        "every": info.every,
        "tz": info.tz,
        "catchup": info.catchup,
        "overlap": info.overlap,
        "next_run": _iso(info.next_run),
        "next_run_local": in_zone(info.next_run, info.tz),
        "last_run": _iso(info.last_run),
        "last_task_id": info.last_task_id,
        "paused": info.paused,
        "orphaned": info.orphaned,
        "error": info.error,
        "runs": [
            {"tick": _iso(r.tick), "at": _iso(r.at), "outcome": r.outcome, "task_id": r.task_id}
            for r in info.runs
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


async def page(request: Request) -> Response:
    infos = await ui(request).inspector.periodic()
    context = {"schedules": infos, "in_zone": in_zone, "nav": "periodic"}
    return render(request, "periodic.html", context)


async def _act(request: Request, action: str) -> tuple[str, str, str | None]:
    if action not in ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}")
    queue = str(request.path_params["queue"])
    name = str(request.path_params["name"])
    inspector = ui(request).inspector
    try:
        if action == "pause":
            await inspector.pause_periodic(name, queue)
        elif action == "resume":
            await inspector.resume_periodic(name, queue)
        elif action == "delete":
            await inspector.delete_periodic(name, queue)
        else:
            return queue, name, (await inspector.trigger_periodic(name, queue)).id
    except PeriodicNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return queue, name, None


async def form_action(request: Request) -> Response:
    action = str(request.path_params["action"])
    await request.form()
    _, name, task_id = await _act(request, action)
    message = f"Periodic {name} {_PAST[action]}."
    if task_id:
        message = f"Periodic {name} triggered: task {task_id}."
    fallback = app_url(request, "periodic")
    return flash_redirect(request, None, fallback, message)


async def api_list(request: Request) -> Response:
    params = query(request, PeriodicQuery)
    infos = await ui(request).inspector.periodic(params.queue)
    return json_response({"schedules": [periodic_json(i) for i in infos]})


async def api_action(request: Request) -> Response:
    action = str(request.path_params["action"])
    queue, name, task_id = await _act(request, action)
    return json_response({"queue": queue, "name": name, "action": action, "task_id": task_id})


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route("/periodic", page, name="periodic"),
        route(
            "/periodic/{queue:ident}/{name:ident}/{action}",
            form_action,
            methods=["POST"],
            name="periodic_action",
        ),
        route("/api/periodic", api_list, name="api_periodic", operation=_LIST),
        route(
            "/api/periodic/{queue:ident}/{name:ident}/{action}",
            api_action,
            methods=["POST"],
            name="api_periodic_action",
            operation=_ACTION,
        ),
    ]


_LIST = schemas.Operation(
    id="listPeriodic",
    summary="Periodic schedules (of one queue with ?queue=), orphaned ones included",
    tag="periodic",
    reply=PeriodicList,
    query=PeriodicQuery,
    errors=(400, 401),
)
_ACTION = schemas.Operation(
    id="periodicAction",
    summary="Pause, resume, trigger (run now) or delete a periodic schedule",
    tag="periodic",
    reply=PeriodicActionReply,
    errors=(401, 403, 404),
)
