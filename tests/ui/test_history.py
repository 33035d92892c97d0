"""The History page, API and task timelines against a real PostgreSQL history store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

import strego
from strego.store.postgres import PostgresStore
from strego.ui import create_app
from tests.conftest import wait_until
from tests.store.conftest import fresh_dsn  # noqa: F401  (a migrated database per test)
from tests.ui.conftest import ClientFactory, conforms, token

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(fresh_dsn: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(fresh_dsn, flush_interval=0.01) as started:
        yield started


@pytest.fixture
async def history_http(
    broker: strego.RedisBroker, store: PostgresStore, make_client: ClientFactory
) -> httpx.AsyncClient:
    client = await make_client(create_app(broker, store))
    await client.get("/api/csrf")
    return client


async def run_tasks(broker: strego.RedisBroker, store: PostgresStore) -> dict[str, str]:
    """Three emails succeed, one report dies after a retry, one task waits: ids by role."""
    async with strego.Client(broker, store=store) as client:
        emails = [
            await client.enqueue(
                strego.Task(
                    "email:send", {"to": f"u{i}"}, queue="emails", labels={"tenant": "acme"}
                )
            )
            for i in range(3)
        ]
        report = await client.enqueue(
            strego.Task("report:build", {"n": 1}, max_retry=1, labels={"tenant": "globex"})
        )
        waiting = await client.enqueue(strego.Task("later", queue="emails", process_in=3600))
    server = strego.Server(
        broker, queues=["default", "emails"], store=store, retry_base=0.01, retry_max=0.02
    )
    server.handle("email:send", lambda task: None)

    @server.handle("report:build")
    async def report_build(task: strego.Task) -> None:
        raise RuntimeError(f"attempt {task.retry_count} failed")

    inspector = strego.Inspector(broker)
    async with server:
        await wait_until(lambda: _finished(inspector))
    assert await store.flush(timeout=10)
    ids = {f"email{i}": info.id for i, info in enumerate(emails)}
    return {**ids, "report": report.id, "waiting": waiting.id}


async def _finished(inspector: strego.Inspector) -> bool:
    emails, default = await inspector.queue_info("emails"), await inspector.queue_info("default")
    return emails.completed == 3 and default.dead == 1


def listed(page: str) -> list[str]:
    assert 'data-table="history"' in page
    return re.findall(r'<tr data-task-id="([^"]+)"', page)


async def test_history_nav_only_with_a_store(
    http: httpx.AsyncClient, history_http: httpx.AsyncClient
) -> None:
    """The History entry shows when a store is configured, and 404s without one."""
    assert ">History</a>" not in (await http.get("/")).text
    assert (await http.get("/history")).status_code == 404
    assert ">History</a>" in (await history_http.get("/")).text


async def test_search_filters_and_sorts(
    history_http: httpx.AsyncClient, broker: strego.RedisBroker, store: PostgresStore
) -> None:
    """Queue, state, type, label and text filters select the right tasks; order flips."""
    ids = await run_tasks(broker, store)
    everything = listed((await history_http.get("/history")).text)
    assert set(everything) == set(ids.values())
    dead = listed((await history_http.get("/history?state=dead")).text)
    assert dead == [ids["report"]]
    emails = listed((await history_http.get("/history?queue=emails&state=completed")).text)
    assert set(emails) == {ids["email0"], ids["email1"], ids["email2"]}
    by_label = listed((await history_http.get("/history?label=tenant%3Dglobex")).text)
    assert by_label == [ids["report"]]
    by_type = listed((await history_http.get("/history?type=later")).text)
    assert by_type == [ids["waiting"]]
    by_text = listed((await history_http.get("/history?q=report")).text)
    assert by_text == [ids["report"]]
    oldest = listed((await history_http.get("/history?order=asc")).text)
    assert oldest == list(reversed(everything))
    page = (await history_http.get("/history?state=dead")).text
    assert "1 matching task<" in page and "attempt 1 failed" in page


async def test_search_pages_with_a_cursor(
    history_http: httpx.AsyncClient, broker: strego.RedisBroker, store: PostgresStore
) -> None:
    """Pages of 2 follow next links until every task was shown once."""
    ids = await run_tasks(broker, store)
    seen: list[str] = []
    url = "/history?limit=2"
    while url:
        page = (await history_http.get(url)).text
        seen += listed(page)
        match = re.search(r'rel="next" href="([^"]+)"', page)
        url = match.group(1).replace("&amp;", "&") if match else ""
    assert sorted(seen) == sorted(ids.values())
    assert "First page" in page


async def test_bad_filters_are_messages_not_errors(history_http: httpx.AsyncClient) -> None:
    """An unknown state or a bad date shows a message on the page; the API says 400."""
    page = await history_http.get("/history?state=bogus")
    assert page.status_code == 200 and "state: unknown bogus" in page.text
    page = await history_http.get("/history?created_after=yesterday")
    assert "not an ISO date/time" in page.text
    page = await history_http.get("/history?cursor=garbage")
    assert "invalid cursor" in page.text
    response = await history_http.get("/api/history?state=bogus")
    assert response.status_code == 400 and conforms(response, "/api/history")


async def test_history_api(
    history_http: httpx.AsyncClient, broker: strego.RedisBroker, store: PostgresStore
) -> None:
    """/api/history returns matches with a total and a cursor, shaped as documented."""
    ids = await run_tasks(broker, store)
    data = conforms(
        await history_http.get("/api/history?label=tenant=acme&limit=2"), "/api/history"
    )
    assert data["total"] == 3 and len(data["items"]) == 2 and data["next_cursor"]
    rest = conforms(
        await history_http.get(
            f"/api/history?label=tenant=acme&limit=2&cursor={data['next_cursor']}"
        ),
        "/api/history",
    )
    found = {i["id"] for i in data["items"] + rest["items"]}
    assert found == {ids["email0"], ids["email1"], ids["email2"]}
    assert rest["next_cursor"] is None


async def test_task_timeline_from_history(
    history_http: httpx.AsyncClient, broker: strego.RedisBroker, store: PostgresStore
) -> None:
    """A task's page shows every recorded attempt, each with its own error and duration;
    a task Redis forgot still has a page."""
    ids = await run_tasks(broker, store)
    page = (await history_http.get(f"/tasks/{ids['report']}")).text
    assert "from the history store" in page
    assert "Attempt 1 of 2</strong>" in page and "Attempt 2 of 2</strong>" in page
    errors = re.findall(r'data-field="attempt-error">([^<]*)<', page)
    assert errors == ["RuntimeError: attempt 0 failed", "RuntimeError: attempt 1 failed"]
    detail = conforms(await history_http.get(f"/api/tasks/{ids['report']}"), "/api/tasks/{task_id}")
    lines = [(e["state"], e["attempt"], e["max_attempts"]) for e in detail["timeline"]]
    assert lines == [("created", None, None), ("failed", 1, 2), ("dead", 2, 2)]
    attempts = detail["timeline"][1:]
    assert all(a["duration_ms"] is not None and a["worker"] for a in attempts)
    assert attempts[0]["error"] != attempts[1]["error"]
    assert (detail["attempts"], detail["max_attempts"]) == (2, 2)
    assert detail["in_redis"] and detail["in_history"]
    inspector = strego.Inspector(broker)
    assert await inspector.delete(ids["email0"])  # Redis forgets it; history keeps it
    gone = await history_http.get(f"/tasks/{ids['email0']}")
    assert gone.status_code == 200
    assert "Redis no longer holds this task" in gone.text and 'method="post"' not in gone.text
    assert "&#34;to&#34;" in gone.text  # the payload kept by the store


async def test_store_down_keeps_redis_pages_working(
    broker: strego.RedisBroker,
    make_client: ClientFactory,
    fresh_dsn: str,
) -> None:
    """With PostgreSQL unreachable, history says so and task pages fall back to Redis."""
    store = PostgresStore(fresh_dsn)
    await store.start()
    await store.aclose()  # closed: every query fails
    http = await make_client(create_app(broker, store))
    info = await strego.Client(broker).enqueue(strego.Task("t"))
    page = await http.get("/history")
    assert page.status_code == 200 and "the history store failed" in page.text
    assert (await http.get("/api/history")).status_code == 503
    task = await http.get(f"/tasks/{info.id}")
    assert task.status_code == 200 and "what Redis knows" in task.text


async def test_a_ui_retry_is_written_to_history(
    history_http: httpx.AsyncClient, broker: strego.RedisBroker, store: PostgresStore
) -> None:
    """Retrying a dead task from the UI records its revival in the history store."""
    ids = await run_tasks(broker, store)
    before = await store.get(ids["report"])
    assert before is not None and before.state == "dead"
    response = await history_http.post(
        f"/api/tasks/{ids['report']}/retry",
        headers={"x-csrf-token": await token(history_http)},
    )
    assert response.status_code == 200
    assert await store.flush(timeout=10)
    after = await store.get(ids["report"])
    # The row's state moves only for revivals > 5 s after the death (clock-skew guard);
    # the timeline records the retry at once.
    assert after is not None and after.timeline[-1].state == "pending"
    assert len(after.timeline) == len(before.timeline) + 1
