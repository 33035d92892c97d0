"""The JSON API against real Redis; every reply is checked against the OpenAPI document."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

import strego
from strego.ui.routes.common import ApiRoute
from tests.conftest import wait_until
from tests.ui.conftest import DeadMaker, conforms, post_api


async def test_every_api_route_is_documented(app: Starlette, http: httpx.AsyncClient) -> None:
    """The served document lists exactly the app's /api routes: methods, path parameters,
    and, for each operation, a reply schema and unique id (all generated, none by hand)."""
    document = (await http.get("/api/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.methods:
            if route.path != "/api/openapi.json":
                assert isinstance(route, ApiRoute), route.path
            served |= {(route.path, m) for m in route.methods if m != "HEAD"}
            for method in route.methods - {"HEAD"}:
                if route.path == "/api/openapi.json":
                    continue
                op = document["paths"][route.path][method.lower()]
                in_path = {p["name"] for p in op["parameters"] if p["in"] == "path"}
                assert in_path == set(route.param_convertors), route.path
                assert "$ref" in op["responses"]["200"]["content"]["application/json"]["schema"]
        assert not isinstance(route, Mount) or route.path == "/static"
    served.discard(("/api/openapi.json", "GET"))
    assert documented == served
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    schemas = document["components"]["schemas"]
    refs = re.findall(r'"#/components/schemas/(\w+)"', json.dumps(document))
    assert set(refs) <= set(schemas)


async def test_queue_reads(http: httpx.AsyncClient, client: strego.Client) -> None:
    """Queues, one queue, tasks by state, throughput and Redis info match the schema."""
    await client.enqueue_many([strego.Task("t", {"i": i}, labels={"k": "v"}) for i in range(3)])
    await client.enqueue(strego.Task("t", queue="emails", process_in=60))
    data = conforms(await http.get("/api/queues"), "/api/queues")
    assert [q["name"] for q in data["queues"]] == ["default", "emails"]
    assert data["totals"]["pending"] == 3 and data["totals"]["scheduled"] == 1
    one = conforms(await http.get("/api/queues/emails"), "/api/queues/{queue}")
    assert one["scheduled"] == 1 and one["size"] == 1
    page = conforms(
        await http.get("/api/queues/default/tasks?state=pending&limit=2&offset=1"),
        "/api/queues/{queue}/tasks",
    )
    assert (page["total"], len(page["tasks"]), page["offset"]) == (3, 2, 1)
    task = page["tasks"][0]
    assert task["payload"] == {"i": 1} and task["labels"] == {"k": "v"}
    assert base64.b64decode(task["payload_base64"]) == b'{"i":1}'
    points = conforms(await http.get("/api/throughput?minutes=5"), "/api/throughput")["points"]
    assert len(points) == 5
    info = conforms(await http.get("/api/redis"), "/api/redis")
    assert info["redis_version"]


async def test_task_dead_workers_consumers(
    http: httpx.AsyncClient, make_dead: DeadMaker, broker: strego.RedisBroker
) -> None:
    """A dead task's detail, the dead list, workers and consumers match the schema."""
    [task_id] = await make_dead(1, error="bad card")
    detail = conforms(await http.get(f"/api/tasks/{task_id}"), "/api/tasks/{task_id}")
    assert detail["state"] == "dead" and detail["last_error"] == "bad card"
    assert detail["payload"] == {"n": 0} and detail["payload_kind"] == "json"
    assert [e["state"] for e in detail["timeline"]] == ["created", "dead"]
    dead = conforms(await http.get("/api/queues/default/dead"), "/api/queues/{queue}/dead")
    assert [t["id"] for t in dead["tasks"]] == [task_id] and dead["state"] == "dead"
    server = strego.Server(broker, queues=["default"])
    async with server:
        await wait_until(lambda: _workers(http))
        workers = conforms(await http.get("/api/workers"), "/api/workers")["workers"]
        assert [w["queues"] for w in workers] == [["default"]]
        await wait_until(lambda: _consumers(http))
    consumers = conforms(
        await http.get("/api/queues/default/consumers"), "/api/queues/{queue}/consumers"
    )
    assert consumers["group"] == "tests"


async def _workers(http: httpx.AsyncClient) -> bool:
    return bool((await http.get("/api/workers")).json()["workers"])


async def _consumers(http: httpx.AsyncClient) -> bool:
    return bool((await http.get("/api/queues/default/consumers")).json()["consumers"])


async def test_read_errors(http: httpx.AsyncClient, client: strego.Client) -> None:
    """Unknown names are 404, bad parameters 400, no store means history is 404."""
    await client.enqueue(strego.Task("t"))
    cases = [
        ("/api/queues/nope", "/api/queues/{queue}", 404),
        ("/api/tasks/nope", "/api/tasks/{task_id}", 404),
        ("/api/queues/default/tasks?state=weird", "/api/queues/{queue}/tasks", 400),
        ("/api/queues/default/tasks?limit=0", "/api/queues/{queue}/tasks", 400),
        ("/api/queues/default/dead?offset=x", "/api/queues/{queue}/dead", 400),
        ("/api/throughput?minutes=5000", "/api/throughput", 400),
        ("/api/history", "/api/history", 404),
    ]
    for url, path, status in cases:
        response = await http.get(url)
        assert response.status_code == status, url
        assert conforms(response, path)["error"]


async def test_task_actions(http: httpx.AsyncClient, make_dead: DeadMaker) -> None:
    """retry/delete/cancel answer done, 404 for unknown tasks, 409 when the state forbids."""
    [dead, other] = await make_dead(2)
    path = "/api/tasks/{task_id}/retry"
    data = conforms(await post_api(http, f"/api/tasks/{dead}/retry"), path, "POST")
    assert data == {"task_id": dead, "action": "retry", "done": True}
    pending = (await http.get(f"/api/tasks/{dead}")).json()
    assert pending["state"] == "pending" and pending["retry_count"] == 0
    response = await post_api(http, f"/api/tasks/{dead}/retry")
    assert response.status_code == 409 and conforms(response, path, "POST")
    response = await post_api(http, "/api/tasks/ghost/retry")
    assert response.status_code == 404 and conforms(response, path, "POST")
    cancel = await post_api(http, f"/api/tasks/{dead}/cancel?queue=default")
    assert conforms(cancel, "/api/tasks/{task_id}/cancel", "POST")["done"]
    delete = await post_api(http, f"/api/tasks/{other}/delete")
    assert conforms(delete, "/api/tasks/{task_id}/delete", "POST")["done"]
    assert (await http.get(f"/api/tasks/{other}")).status_code == 404


async def test_running_task_cannot_be_deleted_but_can_be_cancelled(
    http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Deleting an active task is a 409; cancelling it stops the handler."""
    started, stopped = asyncio.Event(), asyncio.Event()
    server = strego.Server(broker, queues=["default"])

    @server.handle("slow")
    async def slow(task: strego.Task) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    async with server:
        info = await client.enqueue(strego.Task("slow"))
        await asyncio.wait_for(started.wait(), 10)
        response = await post_api(http, f"/api/tasks/{info.id}/delete")
        assert response.status_code == 409
        assert (await post_api(http, f"/api/tasks/{info.id}/cancel")).json()["done"]
        await asyncio.wait_for(stopped.wait(), 10)


async def test_queue_actions(
    http: httpx.AsyncClient,
    client: strego.Client,
    make_dead: DeadMaker,
    inspector: strego.Inspector,
) -> None:
    """pause/resume/purge and retry-all/purge of dead letters report what they did."""
    await client.enqueue_many([strego.Task("t") for _ in range(2)])
    for action, count in (("pause", 1), ("resume", 1), ("purge", 2)):
        response = await post_api(http, f"/api/queues/default/{action}")
        data = conforms(response, f"/api/queues/{{queue}}/{action}", "POST")
        assert data == {"queue": "default", "action": action, "count": count}
    await make_dead(3)
    retried = await post_api(http, "/api/queues/default/dead/retry-all")
    assert conforms(retried, "/api/queues/{queue}/dead/retry-all", "POST")["count"] == 3
    await make_dead(2, queue="other")
    purged = await post_api(http, "/api/queues/other/dead/purge")
    assert conforms(purged, "/api/queues/{queue}/dead/purge", "POST")["count"] == 2
    assert (await inspector.queue_info("other")).dead == 0
    missing = await post_api(http, "/api/queues/ghost/pause")
    assert missing.status_code == 404


async def test_bulk_action(http: httpx.AsyncClient, make_dead: DeadMaker) -> None:
    """Bulk retry reports requested vs done; bad bodies are 400s."""
    ids = await make_dead(3)
    path = "/api/queues/{queue}/tasks/bulk"
    body = {"action": "retry", "ids": [*ids, "ghost"]}
    data = conforms(await post_api(http, "/api/queues/default/tasks/bulk", body), path, "POST")
    assert (data["requested"], data["done"]) == (4, 3)
    for bad in ({"action": "explode", "ids": ids}, {"action": "retry", "ids": "x"}, [1]):
        response = await post_api(http, "/api/queues/default/tasks/bulk", bad)
        assert response.status_code == 400 and conforms(response, path, "POST")
    response = await post_api(http, "/api/queues/default/tasks/bulk", content=b"{not json")
    assert response.status_code == 400


async def test_remove_consumer(
    http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Removing a consumer answers removed, then 404 once it is gone."""
    await client.enqueue(strego.Task("t"))
    await broker.prepare(["default"])
    streams = {stream: ">" for stream in broker.keys("default").streams}
    await broker.redis.xreadgroup("tests", "crashed", streams, count=1)
    path = "/api/queues/{queue}/consumers/{consumer}/remove"
    url = "/api/queues/default/consumers/crashed/remove"
    assert conforms(await post_api(http, url), path, "POST")["removed"]
    again = await post_api(http, url)
    assert again.status_code == 404 and conforms(again, path, "POST")
