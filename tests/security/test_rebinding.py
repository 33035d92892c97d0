"""Item 1: DNS rebinding and cross-site mutations, against every route of the app.

A page on a rebinding name becomes same-origin with a UI on loopback; its requests name
that page's host. Without auth the UI refuses such a Host on every route; in every auth
mode, a mutation whose Origin or Sec-Fetch-Site says another site sent it is refused,
even with valid credentials and a valid CSRF token. The routes come from the app's
route table (``routes.endpoints``), so a new route cannot be forgotten.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import strego
from strego.ui import create_app
from tests.security.routes import Endpoint, endpoints, mutating
from tests.ui.conftest import ClientFactory, csrf_of

PASSWORD = "correct-horse-battery"
EVIL = "evil.example"
CROSS_SITE = [
    {"origin": f"http://{EVIL}"},
    {"origin": f"http://{EVIL}:80"},
    {"origin": "null"},
    {"origin": "http://ui.localhost:8080"},  # same host name, another port: another origin
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},  # e.g. another app on 127.0.0.1:3000
    {"sec-fetch-site": "cross-site", "origin": "http://ui.localhost"},
]


async def _world(client: strego.Client) -> str:
    """A pending task in "default": what a forged action would change."""
    return (await client.enqueue(strego.Task("t", {"n": 1}))).id


async def _fingerprint(broker: strego.RedisBroker, task_id: str) -> tuple[Any, ...]:
    inspector = strego.Inspector(broker)
    info = await inspector.queue_info("default")
    task = await inspector.get_task(task_id)
    return (info.paused, info.pending, info.dead, task.state if task else None)


def _params(task_id: str) -> dict[str, str]:
    return {
        "queue": "default",
        "task_id": task_id,
        "consumer": "c1",
        "task_action": "delete",
        "queue_action": "purge",
    }


async def _attack(
    http: httpx.AsyncClient, endpoint: Endpoint, token: str, task_id: str, **headers: str
) -> httpx.Response:
    """The request a forging page would send, with everything a real page sends."""
    headers = {"x-csrf-token": token, **headers}
    if endpoint.path.startswith("/api/"):
        body = {"action": "delete", "ids": [task_id]}
        return await http.request(endpoint.method, endpoint.path, json=body, headers=headers)
    form = {"csrf_token": token, "action": "delete", "ids": task_id, "token": PASSWORD}
    return await http.request(endpoint.method, endpoint.path, data=form, headers=headers)


async def test_every_route_refuses_a_rebinding_host_without_auth(
    app: Starlette, http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """No auth: every route and method answers 400 to a Host an attacker can re-point,
    and nothing changes."""
    task_id = await _world(client)
    before = await _fingerprint(broker, task_id)
    token = (await http.get("/api/csrf")).json()["csrf_token"]
    found = endpoints(app, **_params(task_id))
    assert len(found) >= 30 and sum(e.mutating for e in found) >= 15
    for endpoint in found:
        for host in (EVIL, f"{EVIL}:8080", "127.0.0.1.nip.io", "localhost.evil.example"):
            response = await _attack(http, endpoint, token, task_id, host=host)
            assert response.status_code == 400, (endpoint, host, response.text)
            assert "DNS rebinding" in response.text
    assert await _fingerprint(broker, task_id) == before


async def test_loopback_names_and_addresses_are_served(
    app: Starlette, make_client: ClientFactory
) -> None:
    """What a person types is served: localhost, *.localhost, IP addresses, any port."""
    for base in ("http://localhost:8080", "http://127.0.0.1", "http://[::1]:9", "http://10.1.2.3"):
        http = await make_client(app, base_url=base)
        assert (await http.get("/api/queues")).status_code == 200, base


async def test_allowed_hosts_are_served(
    broker: strego.RedisBroker, make_client: ClientFactory
) -> None:
    """The names a UI is told it is reached by are served; others are not."""
    app = create_app(broker, allowed_hosts=["strego.internal", ".corp.example"])
    for base, status in (
        ("http://strego.internal", 200),
        ("http://STREGO.internal.:8080", 200),
        ("http://a.corp.example", 200),
        ("http://corp.example", 200),
        ("http://strego.internal.evil.example", 400),
        ("http://evilcorp.example", 400),
    ):
        http = await make_client(app, base_url=base)
        assert (await http.get("/api/queues")).status_code == status, base


async def _authenticated(
    mode: str, broker: strego.RedisBroker, make_client: ClientFactory
) -> tuple[Starlette, httpx.AsyncClient]:
    """An app in ``mode`` and a client holding valid credentials and a CSRF cookie."""
    if mode == "none":
        app = create_app(broker)
        return app, await make_client(app)
    if mode == "basic":
        app = create_app(broker, auth=("admin", PASSWORD))
        return app, await make_client(app, auth=("admin", PASSWORD))
    app = create_app(broker, auth=PASSWORD)
    if mode == "bearer":
        return app, await make_client(app, headers={"authorization": f"Bearer {PASSWORD}"})
    http = await make_client(app)
    login = await http.get("/login")
    form = {"csrf_token": csrf_of(login.text), "token": PASSWORD, "next": "/"}
    assert (await http.post("/login", data=form)).status_code == 303
    return app, http


@pytest.mark.parametrize("mode", ["none", "basic", "bearer", "session"])
async def test_every_mutation_refuses_a_cross_site_origin(
    mode: str, broker: strego.RedisBroker, make_client: ClientFactory, client: strego.Client
) -> None:
    """Valid credentials and CSRF token, but the browser says another site sent it: 403
    on every mutating route (login and logout included), and nothing changes."""
    task_id = await _world(client)
    app, http = await _authenticated(mode, broker, make_client)
    token = (await http.get("/api/csrf")).json()["csrf_token"]
    before = await _fingerprint(broker, task_id)
    routes = mutating(app, **_params(task_id))
    assert {"/login", "/logout", "/api/queues/default/purge"} <= {e.path for e in routes}
    for endpoint in routes:
        for headers in CROSS_SITE:
            response = await _attack(http, endpoint, token, task_id, **headers)
            assert response.status_code == 403, (mode, endpoint, headers, response.text)
            assert "cross-site" in response.text
    assert await _fingerprint(broker, task_id) == before
    # The same request from the UI's own pages works (the test can fail).
    for headers in ({"origin": "http://ui.localhost"}, {"sec-fetch-site": "same-origin"}):
        ok = await http.post(
            "/api/queues/default/pause", headers={"x-csrf-token": token, **headers}
        )
        assert ok.status_code == 200, (mode, headers, ok.text)
