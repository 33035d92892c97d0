"""Conditions tests poll with ``wait_until``: what Redis says about a task or a queue."""

from __future__ import annotations

import strego


async def state_is(inspector: strego.Inspector, task_id: str, state: str) -> bool:
    record = await inspector.get_task(task_id)
    return record is not None and record.state == state


async def processed_at_least(inspector: strego.Inspector, n: int, queue: str = "default") -> bool:
    return (await inspector.queue_info(queue)).processed >= n


async def dead_at_least(inspector: strego.Inspector, n: int, queue: str = "default") -> bool:
    """Dead letters currently kept (after trimming)."""
    return (await inspector.queue_info(queue)).dead >= n


async def dead_total_at_least(inspector: strego.Inspector, n: int, queue: str = "default") -> bool:
    """Tasks ever dead-lettered (the counter, trims do not lower it)."""
    return (await inspector.queue_info(queue)).dead_total >= n


def redis_broker(client: strego.Client) -> strego.RedisBroker:
    """The client's broker as the RedisBroker it is (Client types it as a protocol)."""
    assert isinstance(client.broker, strego.RedisBroker)
    return client.broker
