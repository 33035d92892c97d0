"""Generated requests (schemathesis, from /api/openapi.json) never make the API fail.

Each operation gets a small, bounded number of valid and invalid requests; every reply
must be a documented status (no 5xx), with the documented content type and body shape.
The app runs in-process on its own event loop thread (hypothesis tests are sync).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import strego
from strego.ui import create_app
from tests.ui.conftest import api_document

T = TypeVar("T")
BASE = "http://ui.localhost"
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class AppThread:
    """The UI app and its broker, living on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.http: httpx.AsyncClient | None = None
        self.csrf = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def start(self, redis_url: str, prefix: str, store: Any = None) -> None:
        self.broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
        self.store = store
        if store is not None:
            await store.start()
        async with strego.Client(self.broker) as client:  # something to find
            await client.enqueue_many([strego.Task("t", {"i": i}) for i in range(3)])
            await client.enqueue(strego.Task("t", queue="emails", process_in=600))
        app = create_app(self.broker, store)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        self.csrf = (await self.http.get("/api/csrf")).json()["csrf_token"]

    async def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        assert self.http is not None
        headers = {k: v for k, v in kwargs.get("headers", {}).items() if k != "Connection"}
        headers["x-csrf-token"] = self.csrf
        return await self.http.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=headers,
            json=kwargs.get("json"),
            content=kwargs.get("data") if isinstance(kwargs.get("data"), bytes | str) else None,
        )

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.store is not None:
            await self.store.aclose()
        await self.broker.aclose()

    def stop(self) -> None:
        self.run(self.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def app_thread() -> Iterator[AppThread]:
    thread = AppThread()
    yield thread
    thread.stop()


def fuzz(app_thread: AppThread) -> int:
    """Run every operation with generated input; returns how many requests were sent."""
    schema = schemathesis.openapi.from_dict(api_document())
    sent = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            checks: list[Any] = [not_a_server_error]
            if mode == GenerationMode.POSITIVE:
                checks = POSITIVE_CHECKS
            sent += run_operation(
                app_thread, operation.as_strategy(generation_mode=mode), examples, checks
            )
    return sent


def run_operation(app_thread: AppThread, strategy: Any, examples: int, checks: list[Any]) -> int:
    """Send ``examples`` generated cases of one operation; every reply must pass ``checks``."""
    sent = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        nonlocal sent
        kwargs = case.as_transport_kwargs(base_url=BASE)
        response = app_thread.run(app_thread.send(kwargs))
        sent += 1
        assert response.status_code < 500, (kwargs, response.text)
        case.validate_response(response, checks=checks)

    try:
        check()
    except Unsatisfiable:  # negative mode on an operation with nothing to make invalid
        assert checks == [not_a_server_error]
    return sent


@pytest.mark.timeout(180)
def test_generated_requests_never_fail(app_thread: AppThread, redis_url: str, prefix: str) -> None:
    """Redis only: valid and invalid generated requests get documented, non-5xx replies."""
    app_thread.run(app_thread.start(redis_url, prefix))
    assert fuzz(app_thread) > 200


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_generated_history_searches_never_fail(
    app_thread: AppThread, redis_url: str, prefix: str, pg_dsn: str
) -> None:
    """With a history store, generated searches (odd dates, labels, NULs) never 500."""
    from strego.store.postgres import PostgresStore

    app_thread.run(app_thread.start(redis_url, prefix, PostgresStore(pg_dsn)))
    assert fuzz(app_thread) > 200
