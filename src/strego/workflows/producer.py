"""Enqueueing a flow and awaiting its result (what Client does with a workflow)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pydantic

from strego.ids import new_task_id
from strego.workflows import WorkflowInfo
from strego.workflows.canvas import Flow
from strego.workflows.graph import Graph, Output, compile_flow

__all__ = ["WORKFLOW_ID_PREFIX", "WorkflowProducer", "enqueue_flow", "workflow_result"]

WORKFLOW_ID_PREFIX = "wf_"  # tells a workflow id from a task id without a lookup


class WorkflowProducer(Protocol):
    async def enqueue_workflow(self, graph: Graph, workflow_id: str) -> None: ...

    async def find_workflow(self, workflow_id: str) -> dict[str, Any] | None: ...

    async def open_workflow(self, workflow_id: str, meta: dict[str, Any]) -> None: ...


def plan(flow: Flow) -> Graph:
    """The flow's graph, refusing what a workflow cannot honour."""
    graph = compile_flow(flow)
    for node in graph.nodes:
        if node.task.unique_key is not None:
            raise ValueError(
                f"task {node.task.id} has a unique_key: unique keys are not supported inside "
                "a workflow (a held task could not honour the dedup window)"
            )
    return graph


async def enqueue_flow(broker: WorkflowProducer, flow: Flow) -> WorkflowInfo:
    graph = plan(flow)
    workflow_id = WORKFLOW_ID_PREFIX + new_task_id()
    await broker.enqueue_workflow(graph, workflow_id)
    return WorkflowInfo(workflow_id, [node.task.id for node in graph.nodes])


ResultOf = Callable[[str, float | None], Awaitable[Any]]


async def workflow_result(
    broker: WorkflowProducer,
    workflow_id: str,
    meta: dict[str, Any],
    result_of: ResultOf,
    timeout_s: float | None,
    type_: Any,
) -> Any:
    """The workflow's result: its last task's (chain), the list of its members'
    (group), its callback's (chord); ``meta`` is its record (``find_workflow``) and
    ``result_of(task_id, timeout)`` awaits one task."""
    # Committed, but its parts may not be open yet (a producer that died right after
    # the commit): their tasks would read as unknown instead of waiting.
    await broker.open_workflow(workflow_id, meta)
    ids: list[list[Any]] = meta["ids"]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    async def value(output: Output) -> Any:
        if isinstance(output, int):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return await result_of(str(ids[output][0]), left)
        return [await value(item) for item in output]

    result = await value(meta["out"])
    if type_ is not None:
        return pydantic.TypeAdapter(type_).validate_python(result)
    return result
