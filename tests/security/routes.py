"""Every route of the app, from its route table, with sample path parameters filled in.

Tests iterate over these instead of a hand-written list, so a route added later is
attacked too.
"""

from __future__ import annotations

import dataclasses
import re

from starlette.applications import Starlette
from starlette.routing import Mount, Route

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str

    @property
    def mutating(self) -> bool:
        return self.method not in SAFE


def endpoints(app: Starlette, **params: str) -> list[Endpoint]:
    """(method, path) of every route; ``params`` fill path parameters by name."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(Endpoint("GET", f"{route.path}/app.css", str(route.name)))
        elif isinstance(route, Route):
            path = _fill(route.path, params)
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    found.append(Endpoint(method, path, route.name))
    return found


def _fill(template: str, params: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: _value(m.group(1), template, params), template)


def _value(name: str, template: str, params: dict[str, str]) -> str:
    if name == "action":  # forms.py: task actions vs queue actions; periodic.py's own
        if "/periodic/" in template:
            return params.get("periodic_action", "pause")
        return params["task_action" if template.startswith("/tasks/") else "queue_action"]
    if name == "name":  # a periodic schedule's name
        return params.get("name", "nightly")
    if name == "workflow_id":
        return params.get("workflow_id", "wf_01M90R45022NS9W3G23JX3J7XD")
    return params[name]


def mutating(app: Starlette, **params: str) -> list[Endpoint]:
    return [e for e in endpoints(app, **params) if e.mutating]
