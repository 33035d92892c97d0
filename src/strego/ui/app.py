"""``create_app``: compose the UI's routes, middleware, templates and static files.

The app owns nothing it was given: it never closes the broker or the store, so it can
be mounted inside a larger FastAPI/Starlette application that manages their lifetime.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from collections.abc import Iterable

import jinja2
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

import strego
from strego.admin_base import QueueAdmin
from strego.broker.redis import RedisBroker
from strego.errors import BrokerUnavailableError
from strego.inspector import Inspector
from strego.redaction import redact
from strego.serializers import Serializer, SerializerRegistry
from strego.store.base import TaskHistory
from strego.ui.config import UIConfig, parse_auth, signing_key
from strego.ui.csrf import CsrfTokens
from strego.ui.formatting import FILTERS
from strego.ui.history import HistoryReader
from strego.ui.origins import HostPolicy
from strego.ui.routes import (
    api,
    api_actions,
    auth_pages,
    forms,
    health,
    limits,
    metrics,
    pages,
    periodic,
    task_pages,
    workflow_pages,
)
from strego.ui.routes.common import app_url, html_page, json_response
from strego.ui.security import SecurityMiddleware, SecurityOptions, relative_path
from strego.ui.sessions import LoginThrottle, SessionStore
from strego.ui.state import UIState

__all__ = ["create_app"]

log = logging.getLogger("strego.ui")
_PACKAGE = "strego.ui"


def create_app(
    broker: RedisBroker | QueueAdmin,
    store: HistoryReader | None = None,
    *,
    read_only: bool = False,
    auth: object = None,
    serializers: Iterable[Serializer] = (),
    page_size: int = 25,
    allowed_hosts: Iterable[str] = (),
    secret_key: str | bytes | None = None,
) -> Starlette:
    """The strego web UI and JSON API as an ASGI app.

    ``store``: a started history store (``PostgresStore``) for the History page and
    task timelines, where the UI's retries are recorded too; without one the UI shows
    what Redis knows. ``auth``: ``None``,
    ``("user", "password")`` for HTTP basic, a token string (bearer header for API
    clients, a login form for browsers), or a ``BasicAuth`` / ``TokenAuth``.
    ``read_only`` hides every action and answers 403 to any attempt.
    ``allowed_hosts``: the names the UI is reached by (``.example.com`` includes its
    subdomains, ``*`` any). Without auth it answers only to IP addresses, ``localhost``
    and these (DNS rebinding); with auth, to any name unless some are given.
    ``secret_key`` signs CSRF tokens; give every replica the same one (default: derived
    from the auth credentials, else random per process).
    Mount it anywhere: ``app.mount("/admin/strego", create_app(broker))`` (behind your
    own auth and on a public name, pass that name in ``allowed_hosts``).
    """
    config = UIConfig(read_only=read_only, auth=parse_auth(auth), page_size=page_size)
    extra = list(serializers)
    registry = SerializerRegistry(extra)
    security = _security(config, allowed_hosts, secret_key)
    routes: list[BaseRoute] = [
        *pages.routes(),
        *task_pages.routes(),
        *workflow_pages.routes(),
        *forms.routes(),
        *auth_pages.routes(),
        *api.routes(),
        *api_actions.routes(),
        *health.routes(),
        *metrics.routes(),
        *limits.routes(),
        *periodic.routes(),
        Mount("/static", StaticFiles(packages=[(_PACKAGE, "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, options=security)],
        exception_handlers={
            HTTPException: _http_error,
            RedisConnectionError: _redis_down,
            RedisTimeoutError: _redis_down,
            BrokerUnavailableError: _redis_down,
            RedisResponseError: _redis_refused,
        },
    )
    app.state.strego = UIState(
        inspector=Inspector(broker, _recorder(store), serializers=extra),
        history=store,
        config=config,
        templates=_templates(),
        serializers=registry,
        asset_version=_asset_version(),
        sessions=security.sessions,
        throttle=security.throttle,
    )
    return app


def _security(
    config: UIConfig, allowed_hosts: Iterable[str], secret_key: str | bytes | None
) -> SecurityOptions:
    return SecurityOptions(
        auth=config.auth,
        read_only=config.read_only,
        hosts=HostPolicy.build(allowed_hosts, has_auth=config.auth is not None),
        sessions=SessionStore(),
        throttle=LoginThrottle(),
        csrf=CsrfTokens(signing_key(config.auth, secret_key)),
        max_body_bytes=config.max_body_bytes,
        open_prefixes=("/static/", "/login", "/healthz"),
    )


def _recorder(store: HistoryReader | None) -> TaskHistory | None:
    """The store as a recorder of admin actions (a retry from the UI enters history)."""
    return store if isinstance(store, TaskHistory) else None


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,  # every template, .html or .svg: user data is always escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(FILTERS)
    env.globals["url"] = jinja2.pass_context(
        lambda ctx, name, /, query=None, **params: app_url(ctx["request"], name, query, **params)
    )
    env.globals["strego_version"] = strego.__version__
    return Jinja2Templates(env=env)


def _asset_version() -> str:
    """A hash of the static files, appended to their URLs so browsers never run stale JS."""
    digest = hashlib.sha256()
    folder = importlib.resources.files(_PACKAGE) / "static"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file():
            digest.update(entry.name.encode() + entry.read_bytes())
    return digest.hexdigest()[:10]


def _is_api(request: Request) -> bool:
    return relative_path(request.scope).startswith("/api/")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request) or exc.status_code == 405:
        return json_response({"error": exc.detail}, exc.status_code)
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Too large"}
    return html_page(request, exc.status_code, titles.get(exc.status_code, "Error"), exc.detail)


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("strego UI: Redis unavailable: %s", exc)
    message = redact(f"Redis is unreachable: {exc}")
    if _is_api(request):
        return json_response({"error": message}, 503)
    return html_page(request, 503, "Redis unavailable", message)


async def _redis_refused(request: Request, exc: Exception) -> Response:
    """Redis refused a read, e.g. WRONGTYPE: a key holds data strego did not write.

    409, not 500: the request is fine, the data in Redis is not (and says which)."""
    log.warning("strego UI: Redis refused a command: %s", exc)
    message = redact(f"Redis refused the read ({exc}): a key of this queue holds foreign data")
    if _is_api(request):
        return json_response({"error": message}, 409)
    return html_page(request, 409, "Unreadable data in Redis", message)
