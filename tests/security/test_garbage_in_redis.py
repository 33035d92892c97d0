"""Item 14 (the UI half): garbage in Redis never turns a page or an API call into a 500.

Another program (or a person with redis-cli) may leave anything in strego's keys:
non-numeric counters, index records strego never writes, stream entries without a
body, half-written worker records, members without records. Every GET route of the app
(from its route table) is requested with such data present; each must answer, with a
status below 500.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import redis.asyncio as aioredis
import redis.exceptions
from starlette.applications import Starlette

import strego
from tests.security.routes import endpoints
from tests.store.conftest import databases, pg_dsn  # noqa: F401
from tests.ui.conftest import DeadMaker

GARBAGE_IDS = ["g-state", "g-band", "g-ref", "g-time", "g-nobody", "g-badbody", "g-empty"]


async def _plant_garbage(r: Any, broker: strego.RedisBroker) -> None:
    keys = broker.keys("default")
    hour = int(time.time() // 3600)
    await r.hset(keys.throughput(hour), mapping={f"{hour * 60}:p": "x", "junk": "1", "9:f": "-"})
    await r.hset(
        keys.index,
        mapping={
            "g-state": "zzz|0|123",
            "g-band": "p|99|1-1",
            "g-ref": "p|0|notanid",
            "g-time": "d|0|99999999999999999999",
            "g-nobody": "s|0|1700000000000",
            "g-badbody": "d|0|1700000000000",
            "g-empty": "",
        },
    )
    await r.hset(keys.bodies, "g-badbody", b"\xff\xfe not a task")
    await r.zadd(keys.dead, {"g-badbody": 1, "phantom": 2, "g-time": 3})
    await r.zadd(keys.scheduled, {"g-nobody": 1, "ghost": 2})
    await r.rpush(keys.finished, "nobody-finished", "g-state")
    stream = keys.stream(0)
    await r.xadd(stream, {"x": "no body field"})
    await r.xadd(stream, {"d": b"\x00garbage blob"})
    await r.xadd(stream, {"d": b'{"id": 1}\n'})
    with contextlib.suppress(redis.exceptions.ResponseError):  # BUSYGROUP: a worker made it
        await r.xgroup_create(stream, broker.group, id="$", mkstream=True)
    await r.xadd(stream, {"x": "no body field"})
    await r.xadd(stream, {"d": b"\x00garbage blob"})
    await r.xadd(stream, {"d": b'{"id": 1}\n'})
    # Delivered to a consumer that never answers: active entries with no readable body.
    await r.xreadgroup(broker.group, "zombie", {stream: ">"}, count=3)
    await r.xadd(stream, {"y": "pending, no body"})
    global_keys = broker.global_keys
    await r.zadd(global_keys.workers, {"ghost-worker": time.time() * 1000})
    await r.hset(
        global_keys.worker("ghost-worker"),
        mapping={"name": "ghost-worker", "pid": "abc", "started_ms": "x", "in_flight": ""},
    )
    await r.zadd(global_keys.workers, {"no-record": 1})


async def _plant_bad_counters(r: Any, broker: strego.RedisBroker) -> None:
    """Last: with these, the Lua scripts that count (enqueue, ack) fail (the lead's half
    of item 14); the UI must still show everything."""
    keys = broker.keys("default")
    await r.hset(keys.stats, mapping={"processed": "abc", "enqueued": "", "failed": "1e9"})


async def test_no_route_answers_500_on_garbage(
    app: Starlette,
    http: httpx.AsyncClient,
    client: strego.Client,
    broker: strego.RedisBroker,
    redis_url: str,
    make_dead: DeadMaker,
) -> None:
    await make_dead(2)
    r = aioredis.from_url(redis_url)
    try:
        await _plant_garbage(r, broker)
    finally:
        await r.aclose()
    await client.enqueue(strego.Task("ok", {"n": 1}))
    await client.enqueue(strego.Task("later", process_in=600))
    r = aioredis.from_url(redis_url)
    try:
        await _plant_bad_counters(r, broker)
    finally:
        await r.aclose()
    failures = []
    paths = set()
    for task_id in [*GARBAGE_IDS, "phantom", "ghost"]:
        for endpoint in endpoints(
            app,
            queue="default",
            task_id=task_id,
            consumer="zombie",
            task_action="retry",
            queue_action="pause",
        ):
            if not endpoint.mutating:
                paths.add(endpoint.path)
    for state in ("pending", "active", "scheduled", "retry", "dead", "completed"):
        for cursor in ("", "last", "r1"):
            paths.add(f"/queues/default?state={state}&cursor={cursor}")
            paths.add(f"/api/queues/default/tasks?state={state}&cursor={cursor}")
    paths.update({"/dead?queue=default", "/api/throughput?minutes=1440", "/?range=24h"})
    for path in sorted(paths):
        response = await http.get(path)
        if response.status_code >= 500:
            failures.append((path, response.status_code, response.text[:200]))
    assert failures == []
    # The real tasks are still listed among the garbage.
    listed = (await http.get("/api/queues/default/tasks?state=pending")).json()["tasks"]
    assert [t["type"] for t in listed] == ["ok"]
    dead = (await http.get("/api/queues/default/dead")).json()["tasks"]
    assert len(dead) == 2


async def test_a_nested_history_cursor_is_a_400(
    broker: strego.RedisBroker, make_client: Any, pg_dsn: str
) -> None:
    """A cursor that decodes to deeply nested JSON was a RecursionError, shown as 503."""
    import base64

    from strego.store.postgres import PostgresStore
    from strego.ui import create_app

    nested = base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode()
    async with PostgresStore(pg_dsn) as store:
        http = await make_client(create_app(broker, store))
        for cursor in (nested, "x" * 3000, base64.urlsafe_b64encode(b"{}").decode()):
            response = await http.get("/api/history", params={"cursor": cursor})
            assert response.status_code == 400, response.text[:200]
            page = await http.get("/history", params={"cursor": cursor})
            assert page.status_code == 200 and "invalid cursor" in page.text


async def test_keys_of_the_wrong_type_are_reported_not_500(
    http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker, redis_url: str
) -> None:
    """A queue whose keys hold the wrong Redis types (WRONGTYPE): the pages still render
    (counts it cannot read are 0) and a listing it cannot read says why."""
    await client.enqueue(strego.Task("t", queue="bent"))
    keys = broker.keys("bent")
    r = aioredis.from_url(redis_url)
    try:
        for key in (keys.stats, keys.dead, keys.scheduled, keys.finished, keys.index):
            await r.delete(key)
            await r.set(key, "a string")
    finally:
        await r.aclose()
    for path in (
        "/",
        "/queues",
        "/api/queues",
        "/queues/bent",
        "/dead?queue=bent",
        *(f"/queues/bent?state={s}" for s in ("pending", "scheduled", "dead", "completed")),
        *(f"/api/queues/bent/tasks?state={s}" for s in ("pending", "scheduled", "dead")),
        "/api/queues/bent",
    ):
        response = await http.get(path)
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
