"""Task results in the UI: the task page and the task endpoint show them, escaped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import strego
from strego.store.postgres import PostgresStore
from strego.ui import create_app
from tests.conftest import wait_until
from tests.integration.conftest import (
    ServerFactory,
    make_server,  # noqa: F401  (fixture)
)
from tests.store.conftest import fresh_dsn  # noqa: F401  (a migrated database)
from tests.store.pg_helpers import written
from tests.ui.conftest import XSS, ClientFactory, conforms


async def test_task_page_pretty_prints_the_result_escaped(
    http: httpx.AsyncClient, client: strego.Client, make_server: ServerFactory
) -> None:
    """A completed task's result is shown as coloured JSON; markup in it stays text; the
    task endpoint carries it (and matches its documented shape)."""

    async def answer(payload: Any) -> dict[str, Any]:
        return {"total": 42, "note": XSS}

    await make_server({"answer": answer})
    info = await client.enqueue(strego.Task("answer"))
    assert await client.result(info.id, timeout=10) == {"total": 42, "note": XSS}
    page = (await http.get(f"/tasks/{info.id}")).text
    assert '<span class="j-key">&#34;total&#34;</span>' in page
    assert '<span class="j-num">42</span>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
    detail = conforms(await http.get(f"/api/tasks/{info.id}"), "/api/tasks/{task_id}")
    assert detail["result"] == {"total": 42, "note": XSS}
    assert detail["result_serializer"] == "json"


async def test_completed_without_result_and_raw_bytes(
    http: httpx.AsyncClient, client: strego.Client, make_server: ServerFactory
) -> None:
    """A None result says so; a binary result renders as a hex dump."""

    async def nothing(payload: Any) -> None:
        return None

    async def binary(payload: Any) -> bytes:
        return b"\x00\xff<b>"

    await make_server({"nothing": nothing, "binary": binary})
    none = await client.enqueue(strego.Task("nothing"))
    raw = await client.enqueue(strego.Task("binary"))
    assert await client.result(none.id, timeout=10) is None
    assert await client.result(raw.id, timeout=10) == b"\x00\xff<b>"
    page = (await http.get(f"/tasks/{none.id}")).text
    assert "None kept: it returned None" in page
    page = (await http.get(f"/tasks/{raw.id}")).text
    assert "binary, shown as hex" in page and "00 ff 3c 62 3e" in page
    detail = conforms(await http.get(f"/api/tasks/{raw.id}"), "/api/tasks/{task_id}")
    assert (detail["result"], detail["result_base64"]) == (None, "AP88Yj4=")


@pytest.mark.postgres
async def test_history_keeps_the_result_after_redis_expired(
    broker: strego.RedisBroker,
    client: strego.Client,
    make_server: ServerFactory,
    make_client: ClientFactory,
    fresh_dsn: str,
) -> None:
    """Once Redis' result_ttl passed, the task page shows what the history store kept."""

    async def answer(payload: Any) -> list[int]:
        return [1, 2, 3]

    store = PostgresStore(fresh_dsn, flush_interval=0.01)
    try:
        await make_server({"answer": answer}, store=store)
        info = await client.enqueue(strego.Task("answer", result_ttl=0.2))
        assert await client.result(info.id, timeout=10) == [1, 2, 3]
        key = broker.keys("default").result(info.id)
        http = await make_client(create_app(broker, store=store))
        await written(store)
        await wait_until(lambda: _gone(broker, key))
        detail = (await http.get(f"/api/tasks/{info.id}")).json()
        assert detail["result"] == [1, 2, 3] and detail["in_history"]
        with pytest.raises(strego.TaskNotFoundError):
            await client.result(info.id)
    finally:
        await store.aclose()


async def _gone(broker: strego.RedisBroker, key: str) -> bool:
    return not await broker.redis.exists(key)
