"""HTML pages for queues: the dashboard, the queue list and one queue's tasks."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.ui import queries
from strego.ui.routes.common import known_queue, page_cursor, render, route, ui

__all__ = ["routes"]


async def dashboard(request: Request) -> Response:
    view = await queries.dashboard(ui(request).inspector, request.query_params.get("range", "1h"))
    return render(request, "dashboard.html", {"view": view, "nav": "dashboard"})


async def queues(request: Request) -> Response:
    inspector = ui(request).inspector
    found, workers = await asyncio.gather(queries.all_queues(inspector), inspector.workers())
    context = {
        "queues": found,
        "totals": queries.totals(found),
        "served": queries.served_queues(workers),
        "nav": "queues",
    }
    return render(request, "queues.html", context)


async def queue_detail(request: Request) -> Response:
    queue = await known_queue(request)
    state = request.query_params.get("state", "pending")
    if state not in queries.STATES:
        raise HTTPException(400, f"state must be one of {', '.join(queries.STATES)}")
    size = ui(request).config.page_size
    cursor = page_cursor(request)
    view = await queries.queue_view(ui(request).inspector, queue, state, cursor, size)
    return render(request, "queue.html", {"view": view, "nav": "queues"})


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [
        route("/", dashboard, name="dashboard"),
        route("/queues", queues, name="queues"),
        route("/queues/{queue:ident}", queue_detail, name="queue"),
    ]
