"""``GET /healthz``: is this UI up and can it reach Redis? For load balancers and probes.

Open without authentication (it reveals nothing but up/down), never cached, and bounded:
a Redis that does not answer within a couple of seconds is reported as down (503), so a
probe never hangs on it.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.ui.routes.common import json_response, route, ui

__all__ = ["routes"]

_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ui(request).inspector.ping(), _TIMEOUT_S)
    except Exception as exc:  # any failure to reach Redis is "down", with the reason
        detail = str(exc) or type(exc).__name__
        return json_response({"status": "unavailable", "redis": detail}, 503)
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return json_response({"status": "ok", "redis": "ok", "redis_latency_ms": latency_ms})


def routes() -> list[BaseRoute]:
    """This module's routes (built on demand, so each app has its own)."""
    return [route("/healthz", healthz, name="healthz", methods=["GET"])]
