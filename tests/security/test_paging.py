"""Item 4: listings page by stream position or rank, never by offset over a stream.

``offset=10000000`` over a 1 M-task pending list read a million entries per request
(UI 52 → 696 MB, Redis blocked ~0.4 s, 503s under 4 concurrent requests), and the HTML
"last page" link did the same. Cursors cost one bounded read per band on any page.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

import strego
from strego.paging import MAX_STREAM_OFFSET
from tests.conftest import wait_until


async def _walk(
    inspector: strego.Inspector, state: str, limit: int, *, backward: bool
) -> list[str]:
    """Every id of ``state``, page by page, forward from the first page or backward
    from the last one."""
    ids: list[str] = []
    cursor = "last" if backward else None
    for _ in range(1000):
        page = await inspector.list_page("default", state, cursor=cursor, limit=limit)
        found = [r.id for r in page.records]
        ids = found + ids if backward else ids + found
        cursor = page.prev_cursor if backward else page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the walk did not end")


async def test_pending_pages_forward_and_backward(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """Across priority bands (higher first, FIFO within), walking by next_cursor from
    the first page and by prev_cursor from the last gives every task once, in order."""
    tasks = [strego.Task("t", {"i": i}, priority=(i * 7) % 11) for i in range(137)]
    infos = await client.enqueue_many(tasks)
    expected = [
        info.id
        for _, _, info in sorted(
            ((-t.priority, n, info) for n, (t, info) in enumerate(zip(tasks, infos, strict=True))),
            key=lambda x: (x[0], x[1]),
        )
        if isinstance(info, strego.TaskInfo)
    ]
    for limit in (1, 10, 50, 500):
        assert await _walk(inspector, "pending", limit, backward=False) == expected, limit
        assert await _walk(inspector, "pending", limit, backward=True) == expected, limit
    page = await inspector.list_page("default", "pending", cursor="last", limit=10)
    assert [r.id for r in page.records] == expected[-10:] and page.next_cursor is None
    before = await inspector.list_page("default", "pending", cursor=page.prev_cursor, limit=10)
    assert [r.id for r in before.records] == expected[-20:-10]
    after = await inspector.list_page("default", "pending", cursor=before.next_cursor, limit=10)
    assert [r.id for r in after.records] == expected[-10:]


@pytest.mark.parametrize("state", ["scheduled", "dead"])
async def test_ranked_states_page_by_rank(
    state: str, client: strego.Client, inspector: strego.Inspector, make_dead: Any
) -> None:
    """Sorted sets page by rank: first_row says where a page sits; last works too."""
    if state == "scheduled":
        await client.enqueue_many([strego.Task("t", process_in=60 + i) for i in range(57)])
    else:
        await make_dead(57)
    forward = await _walk(inspector, state, 10, backward=False)
    assert len(forward) == len(set(forward)) == 57
    assert await _walk(inspector, state, 10, backward=True) == forward
    last = await inspector.list_page("default", state, cursor="last", limit=10)
    assert last.first_row == 51 and len(last.records) == 7 and last.next_cursor is None


async def test_active_pages_forward(broker: strego.RedisBroker, client: strego.Client) -> None:
    """The running tasks page forward (the pending list has no reverse order)."""
    release = asyncio.Event()
    server = strego.Server(broker, queues=["default"], concurrency=5)

    async def hold(task: strego.Task) -> None:
        await release.wait()

    server.handle("hold", hold)
    await client.enqueue_many([strego.Task("hold") for _ in range(8)])
    inspector = strego.Inspector(broker)
    async with server:

        async def five_running() -> bool:
            return (await inspector.queue_info("default")).active == 5

        await wait_until(five_running)
        seen = await _walk(inspector, "active", 2, backward=False)
        assert len(set(seen)) == 5
        pending = await _walk(inspector, "pending", 2, backward=False)
        assert len(pending) == 3 and not set(pending) & set(seen)
        with pytest.raises(ValueError, match="forward only"):
            await inspector.list_page("default", "active", cursor="last")
        release.set()


async def test_counts_and_offsets_are_capped(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """limit <= 500 everywhere; offset over a stream <= 1000; bad cursors are refused."""
    await client.enqueue(strego.Task("t"))
    with pytest.raises(ValueError, match="limit"):
        await inspector.list_tasks("default", "pending", limit=501)
    with pytest.raises(ValueError, match="limit"):
        await inspector.list_page("default", "dead", limit=501)
    with pytest.raises(ValueError, match="cursor"):
        await inspector.list_tasks("default", "pending", offset=MAX_STREAM_OFFSET + 1)
    assert await inspector.list_tasks("default", "pending", offset=MAX_STREAM_OFFSET) == []
    assert await inspector.list_tasks("default", "dead", offset=10_000_000) == []
    for cursor in ("r-1", "x1.1-1", "a1", "b1.1-1-1", "{}", "last\x00", "a" * 80):
        with pytest.raises(ValueError, match="cursor"):
            await inspector.list_page("default", "pending", cursor=cursor)
    with pytest.raises(ValueError, match="cursor"):
        await inspector.list_page("default", "scheduled", cursor="a0.1-1")


async def test_api_refuses_offsets_over_a_stream(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """The request of the report is a 400 that says what to use instead."""
    await client.enqueue(strego.Task("t"))
    for path in (
        "/api/queues/default/tasks?state=pending&offset=10000000&limit=500",
        "/api/queues/default/tasks?state=active&offset=1001",
        "/api/queues/default/tasks?state=pending&limit=501",
        "/api/queues/default/tasks?state=pending&cursor=nonsense",
        "/api/queues/default/tasks?state=pending&cursor=r0&offset=5",
        "/api/queues/default/tasks?state=active&cursor=last",
    ):
        response = await http.get(path)
        assert response.status_code == 400, path
    ok = (await http.get("/api/queues/default/tasks?state=pending&cursor=last")).json()
    assert len(ok["tasks"]) == 1 and ok["next_cursor"] is None and ok["prev_cursor"] is None
    dead = await http.get("/api/queues/default/dead?offset=10000000")
    assert dead.status_code == 200 and dead.json()["tasks"] == []


async def test_deep_pages_do_not_block_redis(
    client: strego.Client, http: httpx.AsyncClient, redis_url: str, broker: strego.RedisBroker
) -> None:
    """On a 100 000-task queue the last page (API and HTML) runs no Redis command slower
    than 10 ms, while the old offset read took far longer."""
    for start in range(0, 100_000, 10_000):
        await client.enqueue_many([strego.Task("t", {"n": start + i}) for i in range(10_000)])
    r = aioredis.from_url(redis_url)
    try:
        old = await r.config_get("slowlog-log-slower-than")
        await r.config_set("slowlog-log-slower-than", 10_000)
        await r.slowlog_reset()
        api = await http.get("/api/queues/default/tasks?state=pending&cursor=last&limit=500")
        page = await http.get("/queues/default?state=pending&cursor=last")
        slow = await r.slowlog_get(100)
        # The same read the old offset paging did: XRANGE COUNT offset + limit.
        await r.xrange(broker.keys("default").stream(0), count=100_000)
        old_way = await r.slowlog_get(100)
        await r.config_set("slowlog-log-slower-than", str(old["slowlog-log-slower-than"]))
    finally:
        await r.aclose()
    assert api.status_code == 200 and len(api.json()["tasks"]) == 500
    assert page.status_code == 200 and page.text.count('data-task-id="') == 25
    assert slow == [], slow
    assert len(old_way) >= 1  # the measurement can see a slow read
