"""HTML form actions against real Redis: each one changes Redis and redirects back."""

from __future__ import annotations

import urllib.parse

import httpx

import strego
from tests.ui.conftest import DeadMaker, post_form


def flash(response: httpx.Response) -> str:
    """The one-shot message an action left for the next page."""
    assert response.status_code == 303, response.text
    return urllib.parse.unquote((response.cookies.get("strego_flash") or "").strip('"'))


async def test_pause_and_resume(
    http: httpx.AsyncClient, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Pause sets the queue's pause flag, resume clears it; the message is shown once."""
    await client.enqueue(strego.Task("t"))
    response = await post_form(http, "/queues/default/actions/pause")
    assert flash(response) == "Queue default paused."
    assert response.headers["location"] == "/queues/default"
    assert (await inspector.queue_info("default")).paused
    page = (await http.get("/queues/default")).text
    assert "Queue default paused." in page and "Resume" in page
    assert "Queue default paused." not in (await http.get("/queues/default")).text
    await post_form(http, "/queues/default/actions/resume", {"next": "/queues"})
    assert not (await inspector.queue_info("default")).paused


async def test_purge_queue(
    http: httpx.AsyncClient, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Purge deletes waiting, scheduled and retry tasks and says how many."""
    await client.enqueue_many([strego.Task("t") for _ in range(3)])
    await client.enqueue(strego.Task("t", process_in=60))
    response = await post_form(http, "/queues/default/actions/purge", {"next": "/queues"})
    assert flash(response) == "4 waiting tasks purged in default."
    assert response.headers["location"] == "/queues"
    info = await inspector.queue_info("default")
    assert (info.pending, info.scheduled) == (0, 0)


async def test_retry_dead_task_from_its_page(
    http: httpx.AsyncClient, make_dead: DeadMaker, inspector: strego.Inspector
) -> None:
    """Run now on a dead task moves it back to pending with attempts reset."""
    [task_id] = await make_dead(1)
    response = await post_form(http, f"/tasks/{task_id}/actions/retry", {"queue": "default"})
    assert flash(response) == f"Task {task_id} queued to run now."
    assert response.headers["location"] == f"/tasks/{task_id}?queue=default"
    record = await inspector.get_task(task_id)
    assert record is not None and record.state == strego.TaskState.PENDING
    assert record.retry_count == 0
    assert (await inspector.queue_info("default")).dead == 0


async def test_delete_and_cancel(
    http: httpx.AsyncClient, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Delete removes a task; cancel removes a waiting one; repeating says it was not done."""
    first = await client.enqueue(strego.Task("t"))
    second = await client.enqueue(strego.Task("t", process_in=600))
    response = await post_form(
        http, f"/tasks/{first.id}/actions/delete", {"next": "/queues/default"}
    )
    assert flash(response) == f"Task {first.id} deleted."
    assert await inspector.get_task(first.id) is None
    again = await post_form(http, f"/tasks/{first.id}/actions/delete")
    assert "was not deleted" in flash(again)
    await post_form(http, f"/tasks/{second.id}/actions/cancel")
    cancelled = await inspector.get_task(second.id)
    assert cancelled is not None and cancelled.state == strego.TaskState.CANCELLED
    assert (await http.post(f"/tasks/{first.id}/actions/explode")).status_code == 403
    unknown = await post_form(http, f"/tasks/{first.id}/actions/explode")
    assert unknown.status_code == 404


async def test_bulk_actions_on_a_selection(
    http: httpx.AsyncClient, make_dead: DeadMaker, inspector: strego.Inspector
) -> None:
    """Checked rows are retried, deleted or cancelled together; others are untouched."""
    ids = await make_dead(5)
    response = await post_form(
        http,
        "/queues/default/bulk",
        {"action": "retry", "ids": ids[:2], "next": "/queues/default?state=dead"},
    )
    assert flash(response) == "2 of 2 selected tasks queued to run now."
    assert response.headers["location"] == "/queues/default?state=dead"
    info = await inspector.queue_info("default")
    assert (info.dead, info.pending) == (3, 2)
    await post_form(http, "/queues/default/bulk", {"action": "delete", "ids": ids[2:4]})
    assert (await inspector.queue_info("default")).dead == 1
    await post_form(http, "/queues/default/bulk", {"action": "cancel", "ids": ids[:2]})
    assert (await inspector.queue_info("default")).pending == 0
    none = await post_form(http, "/queues/default/bulk", {"action": "delete"})
    assert flash(none) == "No task selected."
    bad = await post_form(http, "/queues/default/bulk", {"action": "explode", "ids": ids})
    assert bad.status_code == 400


async def test_retry_all_and_purge_dead(
    http: httpx.AsyncClient, make_dead: DeadMaker, inspector: strego.Inspector
) -> None:
    """Retry all moves every dead task back; purge dead deletes them."""
    await make_dead(3)
    response = await post_form(http, "/queues/default/actions/retry_dead")
    assert flash(response) == "3 dead tasks retried in default."
    assert (await inspector.queue_info("default")).pending == 3
    await make_dead(2, queue="other")
    response = await post_form(http, "/queues/other/actions/purge_dead")
    assert flash(response) == "2 dead tasks purged in other."
    assert (await inspector.queue_info("other")).dead == 0


async def test_remove_dead_consumer(
    http: httpx.AsyncClient, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """A consumer holding a task with no live worker (a crash) can be removed."""
    inspector = strego.Inspector(broker)
    await client.enqueue(strego.Task("t"))
    await broker.prepare(["default"])
    streams = {stream: ">" for stream in broker.keys("default").streams}
    await broker.redis.xreadgroup("tests", "crashed-worker", streams, count=1)
    page = (await http.get("/workers")).text
    assert 'data-consumer="crashed-worker"' in page and "no worker" in page
    response = await post_form(http, "/queues/default/consumers/crashed-worker/remove")
    assert "removed" in flash(response)
    assert response.headers["location"] == "/workers"
    assert "crashed-worker" not in await _consumer_names(inspector)
    again = await post_form(http, "/queues/default/consumers/crashed-worker/remove")
    assert "is not in default" in flash(again)


async def _consumer_names(inspector: strego.Inspector) -> set[str]:
    return {c.name for c in await inspector.consumers("default")}


async def test_redirect_stays_inside_the_app(
    http: httpx.AsyncClient, client: strego.Client
) -> None:
    """A 'next' pointing elsewhere (open redirect) falls back to the queue page."""
    await client.enqueue(strego.Task("t"))
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil", "javascript:x"):
        response = await post_form(http, "/queues/default/actions/pause", {"next": target})
        assert response.headers["location"] == "/queues/default", target


async def test_actions_on_unknown_queue_are_404(http: httpx.AsyncClient) -> None:
    """Actions never create keys for a queue nobody enqueued to."""
    response = await post_form(http, "/queues/ghost/actions/pause")
    assert response.status_code == 404
    assert (await post_form(http, "/queues/ghost/bulk", {"action": "retry"})).status_code == 404
