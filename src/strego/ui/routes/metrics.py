"""``GET /metrics``: cluster-wide gauges read from Redis, for Prometheus.

Workers export what they did (``strego worker --metrics-port``); this endpoint exports
what the queues hold now, whoever is running: ``strego_queue_tasks{queue,state}``,
``strego_queue_oldest_pending_seconds{queue}`` and ``strego_workers``. Read-only
commands in three pipelined round trips per 500 queues, no script, so a read-only Redis
user can serve it (about 10 ms of Redis time for 1 000 queues: docs/observability.md).
Behind the UI's authentication when it has one (Prometheus sends basic auth or a bearer
token). Needs the ``[prometheus]`` extra.
"""

from __future__ import annotations

import importlib.util

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from strego.ui.routes.common import route, ui

__all__ = ["routes"]


async def metrics(request: Request) -> Response:
    if importlib.util.find_spec("prometheus_client") is None:
        message = "/metrics needs prometheus_client: pip install 'strego[prometheus]'\n"
        return PlainTextResponse(message, status_code=501)
    from strego.ui.gauges import exposition

    gauges = await ui(request).inspector.gauges()
    body, content_type = exposition(gauges, request.headers.get("accept", ""))
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [route("/metrics", metrics, name="metrics", methods=["GET"])]
