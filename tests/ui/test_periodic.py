"""The Periodic page, its CSRF-guarded actions and /api/periodic, against real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
import pytest

import strego
from strego.ui.routes.periodic import PeriodicActionReply, PeriodicList
from tests.conftest import wait_until
from tests.ui.conftest import post_api, post_form


@pytest.fixture
async def declared(redis_url: str, prefix: str) -> AsyncIterator[strego.Server]:
    """A live worker declaring a Berlin cron schedule and an every-60s one."""
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests")
    server = strego.Server(
        broker,
        periodic=[
            strego.Periodic("reports:daily", cron="0 9 * * *", tz="Europe/Berlin"),
            strego.Periodic("heartbeat", every=60, name="hb"),
        ],
    )
    await server.start()
    inspector = strego.Inspector(broker)
    await wait_until(lambda: _started(inspector), timeout=10)
    yield server
    await server.stop()
    await broker.aclose()


async def _started(inspector: strego.Inspector) -> bool:
    infos = await inspector.periodic()
    return len(infos) == 2 and all(i.next_run for i in infos)


def conforms(response: httpx.Response, model: type[pydantic.BaseModel]) -> Any:
    """Assert a 200 whose body is exactly the documented reply model (extra fields are
    forbidden: the OpenAPI document is generated from these models)."""
    assert response.status_code == 200, response.text
    model.model_validate(response.json())
    return response.json()


async def test_page_lists_schedules_in_their_zone(
    http: httpx.AsyncClient, declared: strego.Server
) -> None:
    """The page shows each schedule, its next run in its own zone, and its actions."""
    page = await http.get("/periodic")
    assert page.status_code == 200
    html = page.text
    assert 'data-periodic="reports:daily"' in html and "Europe/Berlin" in html
    assert " CET" in html or " CEST" in html
    assert "every 1m" in html or "every 60" in html
    assert 'href="/periodic"' in (await http.get("/")).text  # in the navigation


async def test_actions_need_csrf_and_work(
    http: httpx.AsyncClient, declared: strego.Server, inspector: strego.Inspector
) -> None:
    """A form action without the CSRF token is refused; with it, pause/trigger/delete act."""
    refused = await http.post("/periodic/default/hb/pause", data={})
    assert refused.status_code == 403
    assert not (await _one(inspector, "hb")).paused
    paused = await post_form(http, "/periodic/default/hb/pause")
    assert paused.status_code == 303
    assert (await _one(inspector, "hb")).paused
    assert "Periodic%20hb%20paused" in paused.headers["set-cookie"]
    triggered = await post_form(http, "/periodic/default/hb/trigger")
    assert triggered.status_code == 303
    assert (await _one(inspector, "hb")).last_task_id
    assert (await post_form(http, "/periodic/default/nope/pause")).status_code == 404
    assert (await post_form(http, "/periodic/default/hb/explode")).status_code == 404
    assert 'periodic/default/hb/delete"' not in (await http.get("/periodic")).text  # live
    await declared.stop()  # now no live worker declares them: delete is offered
    await _age(declared.broker, "hb")
    assert 'periodic/default/hb/delete"' in (await http.get("/periodic")).text
    assert (await post_form(http, "/periodic/default/hb/delete")).status_code == 303
    assert [i.name for i in await inspector.periodic()] == ["reports:daily"]


async def _age(broker: object, name: str) -> None:
    """The state a minute without any worker declaring ``name`` leaves: seen aged."""
    assert isinstance(broker, strego.RedisBroker)
    seconds, _ = await broker.redis.time()
    await broker.redis.hset(broker.keys("default").periodic_seen, name, (seconds - 61) * 1000)


async def _one(inspector: strego.Inspector, name: str) -> strego.PeriodicInfo:
    return next(i for i in await inspector.periodic() if i.name == name)


async def test_api_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    """/api/openapi.json documents the periodic routes with their reply models."""
    paths = (await http.get("/api/openapi.json")).json()["paths"]
    assert paths["/api/periodic"]["get"]["operationId"] == "listPeriodic"
    action = paths["/api/periodic/{queue}/{name}/{action}"]["post"]
    assert action["operationId"] == "periodicAction"
    assert {p["name"] for p in action["parameters"]} == {"queue", "name", "action"}


async def test_api_lists_and_acts(http: httpx.AsyncClient, declared: strego.Server) -> None:
    """GET /api/periodic matches its schema; POST actions need the CSRF header."""
    data = conforms(await http.get("/api/periodic"), PeriodicList)
    by_name = {s["name"]: s for s in data["schedules"]}
    daily = by_name["reports:daily"]
    assert daily["cron"] == "0 9 * * *" and daily["tz"] == "Europe/Berlin"
    assert daily["next_run_local"].endswith(("CET", "CEST"))
    assert " 09:00 " in daily["next_run_local"]
    assert by_name["hb"]["every"] == 60.0 and not by_name["hb"]["orphaned"]
    only = conforms(await http.get("/api/periodic?queue=other"), PeriodicList)
    assert only == {"schedules": []}
    url = "/api/periodic/default/hb/trigger"
    assert (await http.post(url)).status_code == 403  # no CSRF header
    reply = await post_api(http, url)
    body = conforms(reply, PeriodicActionReply)
    assert body["action"] == "trigger" and body["task_id"].startswith("periodic:hb:manual-")
    after = conforms(await http.get("/api/periodic?queue=default"), PeriodicList)
    hb = next(s for s in after["schedules"] if s["name"] == "hb")
    assert hb["last_task_id"] == body["task_id"] and hb["runs"][0]["outcome"] == "fired"
    assert (await post_api(http, "/api/periodic/default/nope/pause")).status_code == 404
