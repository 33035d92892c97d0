"""A flow compiled to its graph: nodes in flow order, each with its dependencies.

``task_ids`` order is the order tasks appear in the flow (depth-first, left to
right). ``output`` says what ``Client.result(workflow_id)`` returns: a node's index
(its result), or a list of outputs (a group's results).
"""

from __future__ import annotations

import dataclasses
from typing import TypeAlias

from strego.task import Task
from strego.workflows.canvas import Chain, Chord, Group, Step

__all__ = ["Downstream", "Graph", "Node", "Output", "compile_flow"]

Output: TypeAlias = "int | list[Output]"


@dataclasses.dataclass(slots=True)
class Node:
    task: Task
    deps: list[int] = dataclasses.field(default_factory=list)  # in upstream_results order


@dataclasses.dataclass(frozen=True, slots=True)
class Downstream:
    """An edge seen from its dependency: the dependent and the dependency's position
    among the dependent's dependencies (where its result goes in upstream_results)."""

    node: int
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[Node]
    output: Output

    @property
    def roots(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if not node.deps]

    def downstream(self) -> list[list[Downstream]]:
        """Per node, the nodes waiting for it."""
        down: list[list[Downstream]] = [[] for _ in self.nodes]
        for i, node in enumerate(self.nodes):
            for position, dep in enumerate(node.deps):
                down[dep].append(Downstream(i, position))
        return down


def compile_flow(flow: Step) -> Graph:
    nodes: list[Node] = []
    _entries, _exits, output = _compile(flow, nodes)
    return Graph(nodes, output)


def _compile(step: Step, nodes: list[Node]) -> tuple[list[int], list[int], Output]:
    """(entry nodes, exit nodes, output) of one step, appending its nodes."""
    if isinstance(step, Task):
        nodes.append(Node(step))
        index = len(nodes) - 1
        return [index], [index], index
    if isinstance(step, Group):
        entries: list[int] = []
        exits: list[int] = []
        outputs: list[Output] = []
        for member in step.members:
            e, x, o = _compile(member, nodes)
            entries += e
            exits += x
            outputs.append(o)
        return entries, exits, outputs
    if isinstance(step, Chord):
        return _sequence((step.header, step.callback), nodes)
    if isinstance(step, Chain):
        return _sequence(step.steps, nodes)
    raise TypeError(f"not a flow: {type(step).__name__}")  # pragma: no cover


def _sequence(steps: tuple[Step, ...], nodes: list[Node]) -> tuple[list[int], list[int], Output]:
    first: list[int] = []
    previous: list[int] | None = None
    output: Output = []
    for step in steps:
        entries, exits, output = _compile(step, nodes)
        if previous is None:
            first = entries
        else:
            for entry in entries:
                nodes[entry].deps.extend(previous)
        previous = exits
    return first, previous or [], output
