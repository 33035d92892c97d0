"""Item 5 (requests): every request body is capped; a bigger one is refused with 413
before it is read into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette

import strego
from strego.ui.actions import MAX_BULK
from tests.security.routes import mutating
from tests.ui.conftest import ClientFactory

LIMIT = 4 << 20


async def test_every_mutating_route_refuses_a_big_body(
    app: Starlette, http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """An announced body over 4 MiB: 413 on every mutating route, JSON under /api/."""
    info = await client.enqueue(strego.Task("t"))
    token = (await http.get("/api/csrf")).json()["csrf_token"]
    params = {
        "queue": "default",
        "task_id": info.id,
        "consumer": "c1",
        "task_action": "delete",
        "queue_action": "purge",
    }
    body = b"x" * (LIMIT + 1)
    for endpoint in mutating(app, **params):
        response = await http.post(
            endpoint.path,
            content=body,
            headers={"x-csrf-token": token, "content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413, (endpoint, response.text)
        if endpoint.path.startswith("/api/"):
            assert "larger than" in response.json()["error"]
    assert (await strego.Inspector(broker).get_task(info.id)) is not None


async def test_a_streamed_body_is_cut_off(
    http: httpx.AsyncClient, client: strego.Client, make_client: ClientFactory
) -> None:
    """No Content-Length (chunked): reading stops past the limit, long before 200 MB."""
    await client.enqueue(strego.Task("t"))
    token = (await http.get("/api/csrf")).json()["csrf_token"]
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(200):  # 200 MB if it were all read
            sent += 1
            yield b"[" + b" " * (1 << 20)

    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        sent = 0
        response = await http.post(
            "/api/queues/default/tasks/bulk",
            content=chunks(),
            headers={"x-csrf-token": token, "content-type": content_type},
        )
        assert response.status_code == 413, response.text
        assert sent <= LIMIT // (1 << 20) + 2, sent


async def test_a_normal_bulk_request_fits(http: httpx.AsyncClient, client: strego.Client) -> None:
    """The most ids a bulk action takes, each as long as an id may be, fit the limit."""
    ids = [f"{i:\U0001f600>200}" for i in range(MAX_BULK)]  # 4 UTF-8 bytes each
    token = (await http.get("/api/csrf")).json()["csrf_token"]
    for action in ("delete", "cancel"):  # (a form: each byte percent-encoded)
        await client.enqueue_many([strego.Task("t", id=i) for i in ids])
        response = await http.post(
            "/api/queues/default/tasks/bulk",
            json={"action": action, "ids": ids},
            headers={"x-csrf-token": token},
        )
        assert response.status_code == 200 and response.json()["done"] == MAX_BULK
        form = await http.post(
            "/queues/default/bulk", data={"csrf_token": token, "action": action, "ids": ids}
        )
        assert form.status_code == 303, form.text
