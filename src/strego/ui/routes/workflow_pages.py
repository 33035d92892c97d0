"""The workflow page: the graph drawn as inline SVG (rendered here), each task linked."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.ui.routes.common import app_url, flash_redirect, render, route, ui
from strego.ui.workflow_graph import layout

__all__ = ["routes"]


async def workflow_page(request: Request) -> Response:
    workflow_id = str(request.path_params["workflow_id"])
    view = await ui(request).inspector.workflow(workflow_id)
    if view is None:
        raise HTTPException(
            404, f"workflow {workflow_id!r} not found (unknown, or finished and expired)"
        )
    context = {"workflow": view, "graph": layout(view), "nav": "queues"}
    return render(request, "workflow.html", context, allow_fragment=False)


async def cancel_workflow(request: Request) -> Response:
    """POST (CSRF and read-only are enforced by the security middleware)."""
    workflow_id = str(request.path_params["workflow_id"])
    count = await ui(request).inspector.cancel_workflow(workflow_id)
    back = app_url(request, "workflow", workflow_id=workflow_id)
    return flash_redirect(
        request, None, back, f"Workflow {workflow_id} cancelled ({count} task(s) cancelled)."
    )


def routes() -> list[BaseRoute]:
    return [
        route("/workflows/{workflow_id:ident}", workflow_page, name="workflow"),
        route(
            "/workflows/{workflow_id:ident}/cancel",
            cancel_workflow,
            name="workflow_cancel",
            methods=["POST"],
        ),
    ]
