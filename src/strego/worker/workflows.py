"""The worker's part in workflows: drain the outboxes, load upstream results.

Both are optional broker capabilities (a broker without workflows needs neither),
so the worker core still imports no Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from strego.envelope import TaskMessage

__all__ = ["UpstreamLoader", "WorkflowBroker", "upstream_loader", "workflow_loops"]

UpstreamLoader = Callable[[TaskMessage], Awaitable[list[bytes | None]]]


class _Drainer(Protocol):
    async def run(self) -> None: ...


@runtime_checkable
class WorkflowBroker(Protocol):
    def workflow_drainer(self, queues: Sequence[str], done_ttl_s: float) -> _Drainer: ...

    async def upstream_results(self, message: TaskMessage) -> list[bytes | None]: ...


def workflow_loops(
    broker: Any, queues: Sequence[str], result_ttl_s: float
) -> list[asyncio.Task[None]]:
    """The outbox drain loop, when the broker runs workflows."""
    if not isinstance(broker, WorkflowBroker):
        return []
    drainer = broker.workflow_drainer(queues, result_ttl_s)
    return [asyncio.create_task(drainer.run(), name="strego-workflows")]


def upstream_loader(broker: Any) -> UpstreamLoader | None:
    return broker.upstream_results if isinstance(broker, WorkflowBroker) else None
