"""Workflows: chain, group and chord of tasks, with results flowing downstream.

Build a flow with :func:`chain`, :func:`group` and :func:`chord` (nestable), enqueue
it with ``await client.enqueue(flow)`` and get a :class:`WorkflowInfo`. See
docs/workflows.md.
"""

from __future__ import annotations

import dataclasses

from strego.workflows.canvas import Chain, Chord, Flow, Group, chain, chord, group

__all__ = ["Chain", "Chord", "Flow", "Group", "WorkflowInfo", "chain", "chord", "group"]


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """What enqueueing a flow returns: the workflow's id (for ``Client.result`` and
    ``Inspector.workflow``) and its tasks' ids in flow order (depth-first, left to
    right)."""

    id: str
    task_ids: list[str]
