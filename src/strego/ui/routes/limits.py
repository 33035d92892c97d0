"""The Limits page and ``/api/limits``: each global limiter, its use and recent waits."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from strego.records import LimitInfo
from strego.ui.api_schemas import Operation, Reply, Time
from strego.ui.routes.common import json_response, render, route, ui
from strego.ui.serialize import when

__all__ = ["LimitList", "routes"]


class LimitKeyUse(Reply):
    key: str
    in_use: int
    parked: int
    last_used: Time


class LimitWait(Reply):
    at: Time
    wait_s: float
    key: str


class Limit(Reply):
    name: str
    kind: str
    description: str
    queue: str | None
    limit: int
    per_s: float | None
    burst: int | None
    keyed: bool
    in_use: int
    parked: int
    granted: int
    held: int
    recent_waits: list[LimitWait]
    keys: list[LimitKeyUse]


class LimitList(Reply):
    limits: list[Limit]


def limit_json(limit: LimitInfo) -> dict[str, Any]:
    return {
        "name": limit.name,
        "kind": limit.kind,
        "description": limit.description,
        "queue": limit.queue,
        "limit": limit.limit,
        "per_s": limit.per_s,
        "burst": limit.burst,
        "keyed": limit.keyed,
        "in_use": limit.in_use,
        "parked": limit.parked,
        "granted": limit.granted,
        "held": limit.held,
        "recent_waits": [
            {"at": when(w.at), "wait_s": w.wait_s, "key": w.key} for w in limit.recent_waits
        ],
        "keys": [
            {"key": k.key, "in_use": k.in_use, "parked": k.parked, "last_used": when(k.last_used)}
            for k in limit.keys
        ],
    }


async def limits_page(request: Request) -> Response:
    found = await ui(request).inspector.limits()
    return render(request, "limits.html", {"limits": found, "nav": "limits"})


async def limits_api(request: Request) -> Response:
    found = await ui(request).inspector.limits()
    return json_response({"limits": [limit_json(lim) for lim in found]})


_LIMITS = Operation(
    id="listLimits",
    summary="Global rate and concurrency limiters: limit, use, parked tasks, recent waits",
    tag="limits",
    reply=LimitList,
)


def routes() -> list[BaseRoute]:
    return [
        route("/limits", limits_page, name="limits"),
        route("/api/limits", limits_api, name="api_limits", operation=_LIMITS),
    ]
