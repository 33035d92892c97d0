"""``/api/openapi.json``, generated from the route table and the models of ``api_schemas``.

Nothing here is written by hand per route: the paths, methods and path parameters come
from the app's :class:`~strego.ui.routes.common.ApiRoute` objects, the query parameters,
bodies and replies from each route's :class:`~strego.ui.api_schemas.Operation`. So the
document cannot drift from what is served (a test compares them route by route).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import strego
from strego.ui.api_schemas import ErrorReply, Operation, Query
from strego.ui.routes.common import ApiRoute, NameConvertor

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_PATH_PARAMS = {
    "queue": "Queue name.",
    "task_id": "Task id.",
    "consumer": "Consumer name in the queue's consumer group.",
    "name": "Periodic schedule name (its task type unless named).",
    "action": "pause, resume, trigger or delete.",
}
_IDENT_NOTE = ' A "/" in the value travels as "~2F" and a "~" as "~7E".'
_ERRORS = {
    400: "Invalid parameter.",
    401: "Authentication required.",
    403: "CSRF token missing/invalid, a cross-site request, or the UI is read-only.",
    404: "Not found (unknown queue, task or consumer; or no history store).",
    409: "The task's state does not allow this action (or live workers serve the queue).",
    503: "Redis or the history store is unavailable.",
}
_DESCRIPTION = """Read and manage strego queues, tasks, dead letters and workers.

Authentication (when configured): HTTP basic, or `Authorization: Bearer TOKEN`. Wrong
credentials are throttled per client (429 with Retry-After).
Every POST needs a CSRF token unless it is authenticated by a bearer token: GET
`/api/csrf` (keeping the `strego_csrf` cookie it sets) and send its `csrf_token` in the
`X-CSRF-Token` header; the token is bound to that cookie (or to the login session). A
POST that a browser marks as sent by another site (`Sec-Fetch-Site`, `Origin`) is
refused with 403 whatever the credentials. Without auth the UI answers only to IP
addresses, localhost and its configured names (400 otherwise: DNS rebinding). Request
bodies are limited to 4 MiB (413). A read-only UI answers 403 to every POST.
Listings page with `cursor` (`next_cursor`/`prev_cursor` of a reply, or `last`); rows
carry large payloads as a preview only (`payload_truncated`), the task endpoint up to
1 MiB, and its `payload_url` the whole payload.
"""


def openapi_document(routes: Iterable[Any], root_path: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API routes among ``routes``.

    ``servers`` points at where the app is mounted (``root_path``).
    """
    api = [r for r in routes if isinstance(r, ApiRoute)]
    models = _models(r.operation for r in api)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in api:
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                item[method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "strego UI API",
            "version": strego.__version__,
            "description": _DESCRIPTION,
        },
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    }


def _models(operations: Iterable[Operation]) -> list[type[BaseModel]]:
    """Every reply and body model, once each (query models are inlined as parameters)."""
    found: dict[str, type[BaseModel]] = {"ErrorReply": ErrorReply}
    for op in operations:
        for model in (op.reply, op.body):
            if model is not None:
                found.setdefault(model.__name__, model)
    return list(found.values())


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _operation(route: ApiRoute) -> dict[str, Any]:
    op = route.operation
    responses = {"200": _json(op.reply, "OK")}
    for code in op.errors:
        responses[str(code)] = _json(ErrorReply, _ERRORS[code])
    spec: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [*_path_parameters(route), *_query_parameters(op.query)],
        "responses": responses,
    }
    if op.body is not None:
        content = {"application/json": {"schema": _ref(op.body)}}
        spec["requestBody"] = {"required": True, "content": content}
    return spec


def _path_parameters(route: ApiRoute) -> list[dict[str, Any]]:
    out = []
    for name, convertor in route.param_convertors.items():
        note = _IDENT_NOTE if isinstance(convertor, NameConvertor) else ""
        out.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": _PATH_PARAMS.get(name, name) + note,
                "schema": {"type": "string", "minLength": 1},
            }
        )
    return out


def _query_parameters(model: type[Query] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    properties = model.model_json_schema()["properties"]
    out = []
    for name, schema in properties.items():
        schema = _not_null(schema)
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": False,
            "description": schema.pop("description", ""),
            "schema": schema,
        }
        if schema.get("type") == "array":
            param |= {"style": "form", "explode": True}
        out.append(param)
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query string cannot carry JSON null: ``X | None`` is documented as ``X``."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    options = schema.pop("anyOf", None)
    if options:
        (kept,) = [o for o in options if o.get("type") != "null"]
        schema |= kept
    return schema
