"""UI fixtures: the app over an in-process ASGI transport, seeded tasks, a real uvicorn.

Every test gets its own key prefix (see tests/conftest.py), so the app only sees the
queues that test created.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from starlette.applications import Starlette

import strego
from strego.ui import create_app
from strego.ui.openapi import openapi_document
from strego.ui.routes import api, api_actions, limits
from tests.conftest import wait_until
from tests.store.conftest import databases, pg_dsn  # noqa: F401  (PostgreSQL fixtures)

XSS = "<script>alert(1)</script>"
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    """The CSRF token rendered into a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture
def app(broker: strego.RedisBroker) -> Starlette:
    return create_app(broker)


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """make_client(app, prefix="") → an httpx client talking to the app in-process."""
    clients: list[httpx.AsyncClient] = []

    async def factory(asgi_app: Any, **options: Any) -> httpx.AsyncClient:
        options.setdefault("base_url", "http://ui.localhost")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi_app), **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def http(app: Starlette, make_client: ClientFactory) -> httpx.AsyncClient:
    """A client of the app that already holds a CSRF cookie (``http.csrf`` is its token)."""
    client = await make_client(app)
    await client.get("/api/csrf")
    return client


async def token(client: httpx.AsyncClient, prefix: str = "") -> str:
    """The CSRF token bound to the client's cookie (or session), as pages render it."""
    assert client.cookies.get("strego_csrf"), "the client has no CSRF cookie yet"
    value: str = (await client.get(f"{prefix}/api/csrf")).json()["csrf_token"]
    return value


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """A form POST like a browser's: the CSRF field included."""
    return await client.post(url, data={"csrf_token": await token(client), **(data or {})})


async def post_api(
    client: httpx.AsyncClient, url: str, body: Any = None, **kwargs: Any
) -> httpx.Response:
    """An API POST with the X-CSRF-Token header."""
    headers = {"x-csrf-token": await token(client), **kwargs.pop("headers", {})}
    if body is None:
        return await client.post(url, headers=headers, **kwargs)
    return await client.post(url, json=body, headers=headers, **kwargs)


DeadMaker = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def make_dead(redis_url: str, prefix: str) -> DeadMaker:
    """make_dead(count, queue=, error=, labels=, payload=) → ids of tasks a real worker
    (its own broker and consumer) dead-lettered with SkipRetry."""

    async def factory(
        count: int,
        *,
        queue: str = "default",
        error: str = "boom",
        labels: dict[str, str] | None = None,
        payload: Any = None,
        task_type: str = "doomed",
    ) -> list[str]:
        async with strego.RedisBroker(redis_url, prefix=prefix, group="tests") as broker:
            client = strego.Client(broker)
            infos = await client.enqueue_many(
                [
                    strego.Task(
                        task_type,
                        payload if payload is not None else {"n": i},
                        queue=queue,
                        labels=labels,
                    )
                    for i in range(count)
                ]
            )
            server = strego.Server(broker, queues=[queue], concurrency=4)

            async def doomed(task: strego.Task) -> None:
                raise strego.SkipRetry(error)

            server.handle(task_type, doomed)
            inspector = strego.Inspector(broker)
            async with server:
                await wait_until(lambda: _dead_count(inspector, queue, count))
        return [i.id for i in infos if isinstance(i, strego.TaskInfo)]

    return factory


async def _dead_count(inspector: strego.Inspector, queue: str, count: int) -> bool:
    return (await inspector.queue_info(queue)).dead >= count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving an ASGI app on a free loopback port, as a task on this loop."""

    def __init__(self, asgi_app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            asgi_app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self._server.serve())
        await wait_until(lambda: self._server.started, timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task


@pytest.fixture
async def live_server(app: Starlette) -> AsyncIterator[LiveServer]:
    async with LiveServer(app) as server:
        yield server


@functools.cache
def api_schema() -> Any:
    """The app's OpenAPI document, loaded by schemathesis (which validates replies)."""
    return schemathesis.openapi.from_dict(api_document())


def api_document() -> dict[str, Any]:
    """The document the app serves, built from its route table."""
    return openapi_document([*api.routes(), *api_actions.routes(), *limits.routes()])


def conforms(response: httpx.Response, path: str, method: str = "GET") -> Any:
    """Assert that a reply matches what the OpenAPI document says; return its JSON."""
    api_schema()[path][method].validate_response(response)
    return response.json()
