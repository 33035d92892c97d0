"""Admin actions on a queue that no worker has ever read (no consumer group yet).

Enqueueing does not create the group, so ``strego task get/cancel`` and ``queues
purge`` right after ``strego enqueue`` once failed with Redis's NOGROUP error.
"""

from __future__ import annotations

import strego


async def test_get_task_before_any_worker(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """A waiting task is reported pending, not a NOGROUP error."""
    info = await client.enqueue(strego.Task("x"))
    record = await inspector.get_task(info.id)
    assert record is not None
    assert record.state == strego.TaskState.PENDING


async def test_cancel_before_any_worker(client: strego.Client, inspector: strego.Inspector) -> None:
    """Cancelling a waiting task works before any worker started."""
    info = await client.enqueue(strego.Task("x"))
    assert await client.cancel(info.id)
    record = await inspector.get_task(info.id)
    assert record is not None
    assert record.state == strego.TaskState.CANCELLED


async def test_delete_and_purge_before_any_worker(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """delete() and purge_queue() remove waiting tasks before any worker started."""
    infos = [await client.enqueue(strego.Task("x")) for _ in range(3)]
    assert await inspector.delete(infos[0].id)
    assert await inspector.purge_queue("default") == 2
    assert (await inspector.queue_info("default")).pending == 0
