"""Integration fixtures: in-process servers that are always stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import strego

ServerFactory = Callable[..., Awaitable[strego.Server]]


@pytest.fixture
async def make_server(
    redis_url: str, prefix: str
) -> AsyncIterator[Callable[..., Awaitable[strego.Server]]]:
    """Build and start a Server on the test's prefix: make_server(handlers, **options)."""
    started: list[tuple[strego.Server, strego.RedisBroker]] = []

    async def factory(
        handlers: dict[str, Callable[..., Any]],
        *,
        broker_options: dict[str, Any] | None = None,
        start: bool = True,
        **options: Any,
    ) -> strego.Server:
        broker_options = {"group": "tests", **(broker_options or {})}
        broker = strego.RedisBroker(redis_url, prefix=prefix, **broker_options)
        options.setdefault("retry_base", 0.05)
        options.setdefault("retry_max", 0.2)
        server = strego.Server(broker, **options)
        for task_type, fn in handlers.items():
            server.handle(task_type, fn)
        if start:
            await server.start()
        started.append((server, broker))
        return server

    yield factory
    for server, broker in started:
        await server.stop()
        await broker.aclose()
