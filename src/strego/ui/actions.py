"""The UI's actions, shared by the HTML forms and the JSON API.

Each returns how many things it changed, so both front ends can say what happened.
Bulk actions compose the Inspector's single-task calls (each one atomic in Redis).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from strego.inspector import Inspector

__all__ = ["QUEUE_ACTIONS", "TASK_ACTIONS", "bulk_task_action", "queue_action", "task_action"]

TASK_ACTIONS = ("retry", "delete", "cancel")
QUEUE_ACTIONS = ("pause", "resume", "purge", "retry_dead", "purge_dead", "delete")
MAX_BULK = 1000


async def task_action(inspector: Inspector, action: str, task_id: str, queue: str | None) -> bool:
    """Run one task action; False when the task is gone or in a state that forbids it."""
    if action == "retry":
        return await inspector.retry(task_id, queue)
    if action == "delete":
        return await inspector.delete(task_id, queue)
    if action == "cancel":
        return await inspector.cancel(task_id, queue)
    raise ValueError(f"unknown task action {action!r}; use one of {', '.join(TASK_ACTIONS)}")


async def bulk_task_action(
    inspector: Inspector, action: str, task_ids: Sequence[str], queue: str | None
) -> int:
    """Apply one action to many tasks (at most MAX_BULK); returns how many it changed."""
    if action not in TASK_ACTIONS:
        raise ValueError(f"unknown task action {action!r}; use one of {', '.join(TASK_ACTIONS)}")
    if len(task_ids) > MAX_BULK:
        raise ValueError(f"at most {MAX_BULK} tasks per bulk action, got {len(task_ids)}")
    unique = list(dict.fromkeys(task_ids))
    done = 0
    for start in range(0, len(unique), 50):  # bounded concurrency: 50 scripts in flight
        chunk = unique[start : start + 50]
        results = await asyncio.gather(*(task_action(inspector, action, t, queue) for t in chunk))
        done += sum(results)
    return done


async def queue_action(inspector: Inspector, action: str, queue: str) -> int:
    """pause/resume return 1; purge, retry_dead, purge_dead and delete the number of
    tasks. delete raises ``QueueInUseError`` while live workers serve the queue."""
    if action == "pause":
        await inspector.pause(queue)
        return 1
    if action == "resume":
        await inspector.resume(queue)
        return 1
    if action == "purge":
        return await inspector.purge_queue(queue)
    if action == "retry_dead":
        return await inspector.retry_all_dead(queue)
    if action == "purge_dead":
        return await inspector.purge_dead(queue)
    if action == "delete":
        return await inspector.delete_queue(queue)
    raise ValueError(f"unknown queue action {action!r}; use one of {', '.join(QUEUE_ACTIONS)}")
