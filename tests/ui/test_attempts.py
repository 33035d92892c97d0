"""One attempt vocabulary ("attempt n of m") on the task page, the queue tabs and the API.

Pure tests build timelines from recorded events and Redis records; page tests run real
workers (a flaky task that completes on its third attempt, a task that dies) and read
what the UI renders without a history store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

import strego
from strego.records import TaskRecord, describe_attempts
from strego.store.query import TimelineEntry
from strego.task import TaskState
from strego.ui.attempts import history_timeline, redis_timeline
from tests.conftest import wait_until
from tests.ui.conftest import conforms

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def entry(state: str, ms: int, retry_count: int = 0, **fields: object) -> TimelineEntry:
    return TimelineEntry(state=TaskState(state), at=at(ms), retry_count=retry_count, **fields)  # type: ignore[arg-type]


def test_describe_attempts_counts_started_attempts() -> None:
    """n of m: attempts started of the most allowed, whatever the state."""
    assert describe_attempts(TaskState.SCHEDULED, 0, 3) == "0 of 4, not run yet"
    assert describe_attempts(TaskState.ACTIVE, 0, 3) == "1 of 4, attempt 1 running"
    assert describe_attempts(TaskState.RETRY, 2, 2) == "2 of 3, next: attempt 3"
    assert describe_attempts(TaskState.COMPLETED, 2, 3) == "3 of 4, completed after 2 failed"
    assert describe_attempts(TaskState.COMPLETED, 0, 3) == "1 of 4"
    assert describe_attempts(TaskState.DEAD, 3, 3) == "4 of 4"


def test_history_pairs_each_start_with_its_outcome() -> None:
    """A failure belongs to the attempt that ran, with its own error and duration."""
    items = history_timeline(
        [
            entry("pending", 0),
            entry("active", 10, 0, worker="w1"),
            entry("retry", 15, 1, worker="w1", error="boom 1", duration_ms=5.0),
            entry("active", 1015, 1, worker="w2"),
            entry("retry", 1017, 2, worker="w2", error="boom 2", duration_ms=2.0),
            entry("active", 3020, 2, worker="w1"),
            entry("completed", 3021, 2, worker="w1", duration_ms=0.4),
        ],
        max_retry=3,
    )
    assert [(i.state, i.attempt, i.max_attempts) for i in items] == [
        ("created", None, None),
        ("failed", 1, 4),
        ("failed", 2, 4),
        ("completed", 3, 4),
    ]
    assert [i.error for i in items[1:]] == ["boom 1", "boom 2", None]
    assert [i.duration_ms for i in items[1:]] == [5.0, 2.0, 0.4]
    assert [i.worker for i in items[1:]] == ["w1", "w2", "w1"]
    assert items[1].started_at == at(10) and items[1].at == at(15)


def test_history_marks_an_operator_retry_and_a_death_before_running() -> None:
    """A revival is "requeued" (attempts restart at 1); a poison death is an event."""
    items = history_timeline(
        [
            entry("pending", 0),
            entry("active", 10, 0),
            entry("dead", 20, 0, error="bad", dead_reason="skip_retry", duration_ms=10.0),
            entry("pending", 9000, 0),
            entry("dead", 9500, 0, dead_reason="poison"),
        ],
        max_retry=0,
    )
    assert [(i.state, i.attempt) for i in items] == [
        ("created", None),
        ("dead", 1),
        ("requeued", None),
        ("dead", None),
    ]
    assert items[1].dead_reason == "skip_retry" and items[3].dead_reason == "poison"


def record(state: TaskState, retry_count: int, **fields: object) -> TaskRecord:
    base: dict[str, object] = {
        "id": "t1",
        "type": "flaky",
        "queue": "default",
        "payload": None,
        "payload_bytes": b"null",
        "serializer": "json",
        "max_retry": 3,
        "priority": 0,
        "labels": {},
        "timeout": None,
        "unique_key": None,
        "last_error": None,
        "traceback": None,
        "dead_reason": None,
        "created_at": T0,
        "process_at": None,
        "started_at": None,
        "completed_at": None,
        "worker": None,
    }
    return TaskRecord(state=state, retry_count=retry_count, **(base | fields))  # type: ignore[arg-type]


def test_redis_timeline_of_a_task_that_completed_after_failures() -> None:
    """The last error is the failed attempt's, not the completed one's."""
    items = redis_timeline(
        record(
            TaskState.COMPLETED,
            2,
            last_error="boom 2",
            started_at=at(3000),
            completed_at=at(3004),
            worker="w1",
        )
    )
    assert [(i.state, i.attempt) for i in items] == [
        ("created", None),
        ("failed", 1),
        ("failed", 2),
        ("completed", 3),
    ]
    first, failed, done = items[1:]
    assert first.error is None and "error not kept" in (first.note or "")
    assert failed.error == "boom 2" and failed.note is None
    assert done.error is None and done.duration_ms == pytest.approx(4.0)
    assert done.worker == "w1"


def test_redis_timeline_of_scheduled_and_dead_tasks() -> None:
    """A scheduled task shows its first attempt as upcoming; a dead one its last attempt."""
    scheduled = redis_timeline(record(TaskState.SCHEDULED, 0, process_at=at(60_000)))
    assert [(i.state, i.attempt, i.at) for i in scheduled] == [
        ("created", None, T0),
        ("upcoming", 1, at(60_000)),
    ]
    dead = redis_timeline(
        record(
            TaskState.DEAD,
            3,
            last_error="boom 4",
            dead_reason="exhausted",
            completed_at=at(9000),
        )
    )
    assert [(i.state, i.attempt) for i in dead] == [
        ("created", None),
        ("failed", 1),
        ("failed", 2),
        ("failed", 3),
        ("dead", 4),
    ]
    assert [bool(i.note) for i in dead[1:4]] == [False, False, True]
    assert dead[4].error == "boom 4" and dead[4].dead_reason == "exhausted"
    many = redis_timeline(record(TaskState.DEAD, 9, max_retry=9, last_error="x"))
    assert [(i.state, i.attempt) for i in many[1:]] == [("failed", None), ("dead", 10)]
    assert many[1].note and many[1].note.startswith("attempts 1-9 of 10 failed")


async def _flaky_and_dead(broker: strego.RedisBroker, client: strego.Client) -> dict[str, str]:
    """Run a task that fails twice then completes, and one that fails all four attempts."""
    server = strego.Server(broker, queues=["default"], retry_base=0.01, retry_max=0.02)
    calls: dict[str, int] = {}

    @server.handle("flaky")
    async def flaky(task: strego.Task) -> None:
        calls[task.id] = calls.get(task.id, 0) + 1
        if calls[task.id] < 3:
            raise ConnectionError(f"upstream down (call {calls[task.id]})")

    @server.handle("doomed")
    async def doomed(task: strego.Task) -> None:
        raise ValueError(f"bad card (attempt {task.retry_count + 1})")

    flaky_info = await client.enqueue(strego.Task("flaky", {"order": 7}, max_retry=3))
    dead_info = await client.enqueue(strego.Task("doomed", {"card": "x"}, max_retry=3))
    inspector = strego.Inspector(broker)
    async with server:
        await wait_until(lambda: _finished(inspector, flaky_info.id, dead_info.id))
    return {"flaky": flaky_info.id, "dead": dead_info.id}


async def _finished(inspector: strego.Inspector, *ids: str) -> bool:
    for task_id in ids:
        found = await inspector.get_task(task_id)
        if found is None or found.state not in ("completed", "dead"):
            return False
    return True


def timeline(page: str) -> list[tuple[str, str]]:
    """(state, attempt) of each timeline line of a task page."""
    return re.findall(r'<li class="tl-[\w-]+"(?: data-attempt="(\d+)")? data-tl="(\w+)"', page)


async def test_flaky_then_completed_task_page(
    http: httpx.AsyncClient, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """A task that completed after retries opens without an error card: its failed
    attempt and its successful one each show their own outcome (no history store)."""
    ids = await _flaky_and_dead(broker, client)
    page = (await http.get(f"/tasks/{ids['flaky']}")).text
    assert "data-problem" not in page and "card-error" not in page
    assert timeline(page) == [("", "created"), ("1", "failed"), ("2", "failed"), ("3", "completed")]
    assert "Attempt 2 of 4</strong>" in page and "Attempt 3 of 4</strong>" in page
    assert re.findall(r'data-field="attempt-error">([^<]*)<', page) == [
        "ConnectionError: upstream down (call 2)"
    ]
    assert "3 of 4, completed after 2 failed" in page
    detail = conforms(await http.get(f"/api/tasks/{ids['flaky']}"), "/api/tasks/{task_id}")
    assert (detail["attempts"], detail["max_attempts"]) == (3, 4)
    assert [e["attempt"] for e in detail["timeline"]] == [None, 1, 2, 3]


async def test_dead_task_page_and_dead_tab(
    http: httpx.AsyncClient, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """A dead task: "Why it died" with the final attempt's error; the dead tab and the
    page count attempts alike (4 of 4)."""
    ids = await _flaky_and_dead(broker, client)
    page = (await http.get(f"/tasks/{ids['dead']}")).text
    assert 'data-problem="dead"' in page and "Why it died" in page
    assert timeline(page)[-1] == ("4", "dead")
    assert "Attempt 4 of 4</strong>" in page and "ValueError: bad card (attempt 4)" in page
    assert re.search(r'data-field="attempts">4 of 4<', page)
    tab = (await http.get("/queues/default?state=dead")).text
    assert re.findall(r'data-field="attempts">([^<]*)<', tab) == ["4 of 4"]


async def test_retry_tab_and_scheduled_task_count_alike(
    http: httpx.AsyncClient, broker: strego.RedisBroker, client: strego.Client
) -> None:
    """A task waiting for its 3rd attempt shows "2 of 3" on the retry tab and its page;
    a scheduled task that never ran shows 0 attempts and its first as upcoming."""
    server = strego.Server(broker, queues=["default"])
    # The first retry at once, the second an hour later: the task waits in retry.
    server.handle("fails", _always_fails, retry_policy=lambda task, n, exc: 0 if n < 2 else 3600)
    info = await client.enqueue(strego.Task("fails", max_retry=2))
    later = await client.enqueue(strego.Task("later", process_in=3600))
    inspector = strego.Inspector(broker)
    async with server:
        await wait_until(lambda: _retry_count_is(inspector, info.id, 2))
    tab = (await http.get("/queues/default?state=retry")).text
    assert re.findall(r'data-field="attempts">([^<]*)<', tab) == ["2 of 3"]
    page = (await http.get(f"/tasks/{info.id}")).text
    assert 'data-problem="failing"' in page and "Attempt 2 of 3 failed" in page
    assert re.search(r'data-field="attempts">2 of 3, next: attempt 3<', page)
    assert timeline(page)[-1] == ("3", "upcoming")
    scheduled = (await http.get(f"/tasks/{later.id}")).text
    assert re.search(r'data-field="attempts">0 of 4, not run yet<', scheduled)
    assert timeline(scheduled) == [("", "created"), ("1", "upcoming")]


async def _always_fails(task: strego.Task) -> None:
    raise RuntimeError("nope")


async def _retry_count_is(inspector: strego.Inspector, task_id: str, count: int) -> bool:
    found = await inspector.get_task(task_id)
    return found is not None and found.state == "retry" and found.retry_count == count
