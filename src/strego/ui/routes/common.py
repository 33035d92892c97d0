"""Helpers every route module shares: state, prefix-aware URLs, rendering, redirects.

URLs are built from *this* app's router plus the request's ``root_path``, so links stay
right when the app is mounted under any prefix or served behind a proxy's path.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from strego.ui.api_schemas import Operation, Query
from strego.ui.state import UIState

__all__ = [
    "FLASH_COOKIE",
    "ApiRoute",
    "NameConvertor",
    "app_url",
    "flash_redirect",
    "html_page",
    "is_fragment",
    "json_response",
    "known_queue",
    "page_cursor",
    "query",
    "render",
    "root_path",
    "route",
    "ui",
]

FLASH_COOKIE = "strego_flash"


class NameConvertor(Convertor[str]):
    """A queue name or task id as one path segment, whatever characters it holds.

    ASGI servers percent-decode the path before routing, so ``%2F`` would split the
    segment; "/" travels as ``~2F`` instead (and "~" as ``~7E``). A segment that is
    only "." or ".." (which ``Task`` refuses, but another producer may write) travels
    as ``~2E``: browsers drop dot segments, even percent-encoded ones. Ordinary names
    look the same in the URL as in Redis.
    """

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value.replace("~2F", "/").replace("~2E", ".").replace("~7E", "~")

    def to_string(self, value: str) -> str:
        escaped = str(value).replace("~", "~7E").replace("/", "~2F")
        if escaped in (".", ".."):
            escaped = escaped.replace(".", "~2E")
        return urllib.parse.quote(escaped, safe=":@!$'()*+,;=~")


_IDENT = NameConvertor()
_IDENT_PARAM = re.compile(r"{(\w+):ident}")


class ApiRoute(Route):
    """A JSON API route with its :class:`Operation` (what ``/api/openapi.json`` says)."""

    def __init__(self, path: str, endpoint: Any, *, operation: Operation, **options: Any):
        super().__init__(path, endpoint, **options)
        self.operation = operation


def route(path: str, endpoint: Any, *, operation: Operation | None = None, **options: Any) -> Route:
    """A Route whose ``{name:ident}`` parameters are read and written by NameConvertor.

    Set on this route only: Starlette's ``register_url_convertor`` would change every
    app in the process (a mounted strego UI must not alter its host's routing). With an
    ``operation``, an :class:`ApiRoute` that the OpenAPI document describes.
    """
    idents = _IDENT_PARAM.findall(path)
    plain = _IDENT_PARAM.sub(r"{\1}", path)
    made = (
        Route(plain, endpoint, **options)
        if operation is None
        else ApiRoute(plain, endpoint, operation=operation, **options)
    )
    for name in idents:
        made.param_convertors[name] = _IDENT
    return made


Q = TypeVar("Q", bound=Query)


def query(request: Request, model: type[Q]) -> Q:
    """The query string parsed by ``model``; 400 naming the parameter when it is invalid.

    Empty values count as absent (a form's blank field); repeated list parameters
    (``?label=a&label=b``) are kept as lists.
    """
    raw: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        values = [v for v in request.query_params.getlist(name) if v != ""]
        if values:
            is_list = getattr(field.annotation, "__origin__", None) is list
            raw[name] = values if is_list else values[-1]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise HTTPException(400, f"{where}: {error['msg']}, got {error['input']!r}") from None


def ui(request: Request) -> UIState:
    return cast(UIState, request.app.state.strego)


def app_url(
    request: Request, name: str, /, query: Mapping[str, Any] | None = None, **params: Any
) -> str:
    """Path of route ``name`` (with ``query``), including the mount prefix."""
    path = str(request.app.url_path_for(name, **params))
    url = root_path(request) + path
    if query:
        pairs = [(k, v) for k, v in query.items() if v not in (None, "")]
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs, doseq=True)
    return url


def is_fragment(request: Request) -> bool:
    """htmx asks for the refreshable part of a page only."""
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    status_code: int = 200,
    *,
    allow_fragment: bool = True,
) -> Response:
    """Render a page (or, for htmx, its ``fragments/`` part) with the shared context."""
    state = ui(request)
    fragment = allow_fragment and is_fragment(request)
    name = f"fragments/{template}" if fragment else template
    flash = None if fragment else request.cookies.get(FLASH_COOKIE)
    full = {
        "request": request,
        "config": state.config,
        "read_only": state.config.read_only,
        "has_history": state.history is not None,
        "csrf_token": request.state.csrf_token,
        "auth_via": request.state.strego_auth,
        "asset_version": state.asset_version,
        "flash": urllib.parse.unquote(flash) if flash else None,
        "now": datetime.now(UTC),
        **context,
    }
    response = state.templates.TemplateResponse(request, name, full, status_code=status_code)
    response.headers["vary"] = "HX-Request"
    response.headers["cache-control"] = "no-store"
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=_cookie_path(request))
    return response


def root_path(request: Request) -> str:
    """Where this app is mounted ("" at the top)."""
    return str(request.scope.get("root_path", ""))


def _cookie_path(request: Request) -> str:
    return root_path(request) + "/"


def flash_redirect(request: Request, target: str | None, fallback: str, message: str) -> Response:
    """303 back to ``target`` (if it is a path inside this app) with a one-shot message."""
    root = root_path(request)
    safe = (
        target
        and target.startswith(root + "/")
        and not target.startswith("//")
        and "\\" not in target
    )
    response = RedirectResponse(target if safe else fallback, status_code=303)  # type: ignore[arg-type]
    response.set_cookie(
        FLASH_COOKIE,
        urllib.parse.quote(message[:300]),
        max_age=60,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
    )
    return response


def page_cursor(request: Request) -> str | None:
    """The ``cursor`` query parameter of a paged listing (see strego.paging), if any."""
    value = request.query_params.get("cursor", "")
    return value[:64] or None


async def known_queue(request: Request) -> str:
    """The ``queue`` path parameter, or 404 when no task was ever enqueued to it."""
    queue = str(request.path_params["queue"])
    if queue not in await ui(request).inspector.known_queues():
        raise HTTPException(404, f"unknown queue {queue!r}")
    return queue


def json_response(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code, headers={"cache-control": "no-store"})


def html_page(request: Request, status_code: int, title: str, message: str) -> Response:
    """An error page in the app's layout."""
    context = {"title": title, "message": message}
    return render(request, "error.html", context, status_code, allow_fragment=False)
