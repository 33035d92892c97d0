"""Periodic tasks under the Redis ACL recipe of docs/security.md: a worker declares and
fires, the operator's UI lists and acts, the read-only UI lists and cannot act; nothing
is denied in ACL LOG but the read-only user's refused writes."""

from __future__ import annotations

import httpx

import strego
from strego.embedded import EmbeddedRedis
from strego.ui import create_app
from tests.conftest import wait_until
from tests.security.test_redis_acl import _denials, acl_redis, urls

__all__ = ["acl_redis", "urls"]  # the ACL fixtures, shared


async def test_periodic_under_the_acl_recipe(
    urls: dict[str, str], acl_redis: EmbeddedRedis
) -> None:
    """Worker: declare and fire; UI admin: list, pause, resume, trigger, delete; UI
    read-only: list, and its actions are refused."""
    ran: list[str] = []
    async with strego.RedisBroker(urls["worker"], group="acl") as worker_broker:
        server = strego.Server(worker_broker, periodic=[strego.Periodic("beat", every=1)])

        async def beat(task: strego.Task) -> None:
            ran.append(task.id)

        server.handle("beat", beat)
        async with server:
            await wait_until(lambda: len(ran) >= 2, timeout=15)
    async with strego.RedisBroker(urls["ui-admin"], group="acl") as admin_broker:
        transport = httpx.ASGITransport(app=create_app(admin_broker))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            token = (await http.get("/api/csrf")).json()["csrf_token"]
            listed = (await http.get("/api/periodic")).json()["schedules"]
            assert [s["name"] for s in listed] == ["beat"]
            for action in ("pause", "resume", "trigger", "delete"):
                reply = await http.post(
                    f"/api/periodic/default/beat/{action}", headers={"x-csrf-token": token}
                )
                assert reply.status_code == 200, (action, reply.text)
    async with strego.RedisBroker(urls["ui-readonly"], group="acl") as ro_broker:
        inspector = strego.Inspector(ro_broker)
        assert await inspector.periodic() == []
        page = httpx.ASGITransport(app=create_app(ro_broker, read_only=True))
        async with httpx.AsyncClient(transport=page, base_url="http://127.0.0.1") as http:
            assert (await http.get("/periodic")).status_code == 200
            assert (await http.get("/api/periodic")).status_code == 200
            token = (await http.get("/api/csrf")).json()["csrf_token"]
            refused = await http.post(
                "/api/periodic/default/beat/pause", headers={"x-csrf-token": token}
            )
            assert refused.status_code == 403
    assert await _denials(acl_redis) == []
