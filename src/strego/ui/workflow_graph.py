"""A workflow's graph laid out for a server-rendered SVG: columns by depth, no script.

Each task sits in the column of its longest path from a first step, in flow order
within the column; edges join a dependency's right side to its dependent's left.
Huge fan-outs stay readable and bounded: a column shows at most ``MAX_PER_COLUMN``
boxes and one more box summarising the rest (with their states), and edges to hidden
boxes go to that summary box.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from strego.workflows.view import WorkflowTask, WorkflowView

__all__ = ["Box", "Edge", "GraphLayout", "layout"]

MAX_PER_COLUMN = 40
BOX_W, BOX_H = 220, 46
GAP_X, GAP_Y = 60, 14
PAD = 10


@dataclasses.dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    task: WorkflowTask | None  # None: the summary of a column's hidden tasks
    summary: str = ""

    @property
    def state(self) -> str:
        return self.task.state if self.task else "more"


@dataclasses.dataclass(frozen=True, slots=True)
class Edge:
    path: str  # SVG path data: a cubic curve from dependency to dependent


@dataclasses.dataclass(frozen=True, slots=True)
class GraphLayout:
    width: int
    height: int
    boxes: list[Box]
    edges: list[Edge]
    box_w: int = BOX_W
    box_h: int = BOX_H


def _depths(view: WorkflowView) -> list[int]:
    """Longest path from a first step; dependencies always come earlier in flow order."""
    index = {task.id: i for i, task in enumerate(view.tasks)}
    depth = [0] * len(view.tasks)
    for i, task in enumerate(view.tasks):
        for dep in task.deps:
            if dep in index:
                depth[i] = max(depth[i], depth[index[dep]] + 1)
    return depth


def layout(view: WorkflowView) -> GraphLayout:
    depth = _depths(view)
    columns: dict[int, list[int]] = {}
    for i, d in enumerate(depth):
        columns.setdefault(d, []).append(i)
    place: dict[int, Box] = {}  # task index → the box that shows it (or its summary)
    boxes: list[Box] = []
    tallest = 0
    for d, members in sorted(columns.items()):
        x = PAD + d * (BOX_W + GAP_X)
        shown, hidden = members[:MAX_PER_COLUMN], members[MAX_PER_COLUMN:]
        for row, i in enumerate(shown):
            box = Box(x, PAD + row * (BOX_H + GAP_Y), view.tasks[i])
            boxes.append(box)
            place[i] = box
        rows = len(shown)
        if hidden:
            states = Counter(view.tasks[i].state for i in hidden)
            text = ", ".join(f"{n} {s}" for s, n in states.most_common())
            box = Box(x, PAD + rows * (BOX_H + GAP_Y), None, f"+{len(hidden)} more: {text}")
            boxes.append(box)
            for i in hidden:
                place[i] = box
            rows += 1
        tallest = max(tallest, rows)
    index = {task.id: i for i, task in enumerate(view.tasks)}
    seen: set[tuple[int, int, int, int]] = set()
    edges: list[Edge] = []
    for i, task in enumerate(view.tasks):
        for dep in task.deps:
            if dep not in index:
                continue
            a, b = place[index[dep]], place[i]
            key = (a.x, a.y, b.x, b.y)
            if key in seen:  # many hidden tasks share a summary box: one edge
                continue
            seen.add(key)
            x1, y1 = a.x + BOX_W, a.y + BOX_H // 2
            x2, y2 = b.x, b.y + BOX_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    width = PAD * 2 + (max(columns) + 1) * BOX_W + max(columns) * GAP_X if columns else 0
    height = PAD * 2 + tallest * (BOX_H + GAP_Y) - GAP_Y
    return GraphLayout(width, max(height, BOX_H + 2 * PAD), boxes, edges)
