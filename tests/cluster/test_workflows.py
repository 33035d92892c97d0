"""Workflows across queues on different Redis Cluster masters: the release of a
dependent in another slot goes through the outbox, exactly once."""

from __future__ import annotations

from typing import Any

import pytest

import strego
from tests.cluster.conftest import ServerFactory

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("target", ["cluster", "single"], indirect=True)
async def test_chord_over_four_queues_on_different_masters(
    client: strego.Client, make_server: ServerFactory, queues: list[str]
) -> None:
    """Members spread over 4 queues (3 masters), callback and a last step elsewhere:
    the callback gets every result in order, once; a dead member cancels downstream."""
    four = [*queues, queues[0] + "x"]
    ran: list[str] = []

    async def member(payload: int) -> int:
        return payload * 3

    async def callback(task: strego.Task) -> list[Any]:
        ran.append(task.id)
        return task.upstream_results

    async def last(task: strego.Task) -> int:
        return len(task.upstream_results[0])

    async def broken(payload: Any) -> None:
        raise strego.SkipRetry("no")

    await make_server(
        {"member": member, "callback": callback, "last": last, "broken": broken},
        queues=four,
        concurrency=20,
    )
    flow = strego.chain(
        strego.chord(
            [strego.Task("member", n, queue=four[n % 4]) for n in range(40)],
            strego.Task("callback", queue=four[3]),
        ),
        strego.Task("last", queue=four[1]),
    )
    info = await client.enqueue(flow)
    assert await client.result(info.id, timeout=60) == 40
    assert await client.result(info.task_ids[40], timeout=5) == [3 * n for n in range(40)]
    assert ran == [info.task_ids[40]]

    failing = strego.chord(
        [strego.Task("member", 1, queue=four[0]), strego.Task("broken", queue=four[2])],
        strego.Task("callback", queue=four[3]),
    )
    info = await client.enqueue(failing)
    with pytest.raises(strego.TaskCancelledError) as cancelled:
        await client.result(info.id, timeout=60)
    assert cancelled.value.reason == "upstream_failed"
