"""Workflows end to end on a real Redis with in-process workers: results flow down,
failures cancel dependents, a retried member resumes the flow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import strego
from strego.errors import TaskCancelledError
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401


def handlers(calls: list[tuple[str, Any, list[Any]]]) -> dict[str, Any]:
    async def add(payload: int, task: strego.Task) -> int:
        calls.append(("add", payload, task.upstream_results))
        return payload + sum(r for r in task.upstream_results if isinstance(r, int))

    async def collect(task: strego.Task) -> list[Any]:
        calls.append(("collect", task.payload, task.upstream_results))
        return list(task.upstream_results)

    async def fail(task: strego.Task) -> None:
        calls.append(("fail", task.payload, task.upstream_results))
        if task.labels.get("fixed") != "yes":
            raise strego.SkipRetry("broken")

    return {"add": add, "collect": collect, "fail": fail}


async def test_chain_of_five_passes_each_result_on(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """A chain of 5: each step gets [previous result]; the workflow's result is the last's."""
    calls: list[tuple[str, Any, list[Any]]] = []
    await make_server(handlers(calls))
    flow = strego.chain(*(strego.Task("add", n) for n in range(1, 6)))
    info = await client.enqueue(flow)
    assert isinstance(info, strego.WorkflowInfo) and len(info.task_ids) == 5
    assert await client.result(info.id, timeout=30) == 15
    assert [c[2] for c in calls] == [[], [1], [3], [6], [10]]
    assert await client.result(info.task_ids[2], timeout=1) == 6


async def test_chord_receives_results_in_group_order(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """A chord of 50: the callback runs once with the 50 results in the group's order."""
    calls: list[tuple[str, Any, list[Any]]] = []
    await make_server(handlers(calls), concurrency=20)
    flow = strego.chord([strego.Task("add", n) for n in range(50)], strego.Task("collect"))
    info = await client.enqueue(flow)
    assert await client.result(info.id, timeout=30) == list(range(50))
    assert [c[0] for c in calls].count("collect") == 1


async def test_group_result_is_the_list(make_server: ServerFactory, client: strego.Client) -> None:
    """A group's result is the list of its members' results; queues may differ."""
    await make_server(handlers([]), queues=["default", "other"])
    flow = strego.group(strego.Task("add", 1), strego.Task("add", 2, queue="other"))
    info = await client.enqueue(flow)
    assert await client.result(info.id, timeout=30) == [1, 2]


async def test_nested_chain_group_chord_chain(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """chain → group → chord → chain completes with the right results everywhere."""
    calls: list[tuple[str, Any, list[Any]]] = []
    await make_server(handlers(calls), queues=["default", "b"])
    flow = strego.chain(
        strego.Task("add", 1),  # 1
        strego.group(strego.Task("add", 10), strego.Task("add", 20, queue="b")),  # 11, 21
        strego.chord(
            [strego.Task("add", 100), strego.Task("add", 200)],  # 132, 232
            strego.chain(strego.Task("collect"), strego.Task("collect", queue="b")),
        ),
    )
    info = await client.enqueue(flow)
    assert len(info.task_ids) == 7
    assert await client.result(info.id, timeout=30) == [[132, 232]]


async def test_dead_member_cancels_dependents_then_retry_resumes(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A dead member: the callback never runs, dependents are cancelled upstream_failed;
    retrying the member (fixed) resumes the flow to completion."""
    calls: list[tuple[str, Any, list[Any]]] = []
    await make_server(handlers(calls))
    broken = strego.Task("fail", "x", max_retry=0)
    flow = strego.chain(
        strego.chord([strego.Task("add", 1), broken], strego.Task("collect")),
        strego.Task("add", 5),
    )
    info = await client.enqueue(flow)
    callback, last = info.task_ids[2], info.task_ids[3]
    with pytest.raises(TaskCancelledError) as cancelled:
        await client.result(callback, timeout=30)
    assert cancelled.value.reason == "upstream_failed"
    with pytest.raises(TaskCancelledError):
        await client.result(last, timeout=30)
    record = await inspector.get_task(callback)
    assert record is not None and record.state == "cancelled"
    assert record.last_error == "upstream_failed"
    assert record.workflow_id == info.id
    assert "collect" not in [c[0] for c in calls]
    view = await inspector.workflow(info.id)
    assert view is not None and view.state == "failed"
    assert [t.state for t in view.tasks] == ["completed", "dead", "cancelled", "cancelled"]
    assert view.tasks[2].reason == "upstream_failed"
    assert view.tasks[2].deps == info.task_ids[:2]
    # Fix it and retry: the flow resumes.
    broker = client.broker
    assert isinstance(broker, strego.RedisBroker)
    keys = broker.keys("default")
    body = await broker.redis.hget(keys.bodies, broken.id)
    assert body is not None
    fixed = body.replace(b'"t":"fail"', b'"t":"fail","l":{"fixed":"yes"}', 1)
    await broker.redis.hset(keys.bodies, broken.id, fixed)
    assert await inspector.retry(broken.id)

    async def finished() -> bool:
        record = await inspector.get_task(last)
        return record is not None and record.state == "completed"

    await wait_until(finished, timeout=30)
    assert await client.result(info.id, timeout=30) == 5  # 5 + no int upstream
    assert await client.result(callback, timeout=1) == [1, None]
    view = await inspector.workflow(info.id)
    assert view is not None and view.state == "completed"
    assert [c[0] for c in calls].count("collect") == 1


async def test_cancel_workflow_cancels_everything_unfinished(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Cancelling a workflow: held tasks cancelled, nothing released afterwards."""
    gate = asyncio.Event()

    async def slow(task: strego.Task) -> int:
        await gate.wait()
        return 1

    ran: list[str] = []

    async def after(task: strego.Task) -> None:
        ran.append(task.id)

    await make_server({"slow": slow, "after": after})
    flow = strego.chain(strego.Task("slow"), strego.Task("after"), strego.Task("after"))
    info = await client.enqueue(flow)
    view = await inspector.workflow(info.id)
    assert view is not None and view.state == "running"
    assert [t.state for t in view.tasks][1:] == ["waiting", "waiting"]
    assert await inspector.cancel_workflow(info.id) >= 2
    gate.set()
    with pytest.raises(TaskCancelledError):
        await client.result(info.task_ids[2], timeout=10)
    assert ran == []
    view = await inspector.workflow(info.id)
    assert view is not None and view.state == "cancelled"
    assert await inspector.workflow("wf_unknown") is None


async def test_wide_fan_in_reaches_the_callback(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """A chord of 8 500 (past Lua's unpack limit): the callback gets every result."""

    async def member(payload: int) -> int:
        return payload

    async def count(task: strego.Task) -> int:
        assert task.upstream_results == list(range(8500))
        return len(task.upstream_results)

    await make_server({"member": member, "count": count}, concurrency=100)
    flow = strego.chord([strego.Task("member", n) for n in range(8500)], strego.Task("count"))
    info = await client.enqueue(flow)
    assert await client.result(info.id, timeout=120) == 8500


async def test_enqueue_many_takes_flows_among_tasks(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """enqueue_many: a WorkflowInfo in each flow's slot, TaskInfo in the others'."""
    await make_server(handlers([]))
    out = await client.enqueue_many(
        [
            strego.Task("add", 1),
            strego.chain(strego.Task("add", 2), strego.Task("add", 3)),
            strego.Task("add", 4),
        ]
    )
    assert [type(o).__name__ for o in out] == ["TaskInfo", "WorkflowInfo", "TaskInfo"]
    assert isinstance(out[1], strego.WorkflowInfo)
    assert await client.result(out[1].id, timeout=30) == 5
    assert isinstance(out[2], strego.TaskInfo)
    assert await client.result(out[2].id, timeout=30) == 4
