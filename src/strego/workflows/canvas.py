"""chain, group, chord: the shapes of a workflow, validated when they are built.

A flow is a tree of :class:`~strego.task.Task` leaves. Linking is only ever forward
(a chain step depends on the previous step's last tasks), so the graph it describes
has no cycle as long as no task appears twice — which is checked here, at
construction, together with empty groups and chains.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeAlias

from strego.task import Task

__all__ = ["Chain", "Chord", "Flow", "Group", "chain", "chord", "group"]

Step: TypeAlias = "Task | Flow"


class Flow:
    """A composite of tasks: :class:`Chain`, :class:`Group` or :class:`Chord`."""

    __slots__ = ()

    def tasks(self) -> Iterator[Task]:
        """Every task of the flow, depth-first, left to right."""
        raise NotImplementedError


def _leaves(step: Step) -> Iterator[Task]:
    if isinstance(step, Task):
        yield step
    else:
        yield from step.tasks()


def _steps(kind: str, steps: Iterable[object]) -> tuple[Step, ...]:
    out: list[Step] = []
    for step in steps:
        if not isinstance(step, Task | Flow):
            raise TypeError(
                f"a {kind} takes strego.Task objects or flows (chain, group, chord), "
                f"got {type(step).__name__}"
            )
        out.append(step)
    if not out:
        raise ValueError(f"an empty {kind} has nothing to run: give it at least one task")
    seen: set[str] = set()
    for step in out:
        for task in _leaves(step):
            if task.id in seen:
                raise ValueError(
                    f"task {task.id} appears twice in one {kind}: a task runs once, so it "
                    "can be one step of a workflow only (create another Task)"
                )
            seen.add(task.id)
    return tuple(out)


def _flatten_args(steps: tuple[object, ...]) -> tuple[object, ...]:
    """``group([a, b])`` is ``group(a, b)``, as in Celery's canvas."""
    if len(steps) == 1 and isinstance(steps[0], list | tuple):
        return tuple(steps[0])
    return steps


class Chain(Flow):
    """Steps run one after another; each receives the previous step's results."""

    __slots__ = ("steps",)

    def __init__(self, *steps: Step | Sequence[Step]) -> None:
        self.steps = _steps("chain", _flatten_args(steps))

    def tasks(self) -> Iterator[Task]:
        for step in self.steps:
            yield from _leaves(step)

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.steps))})"


class Group(Flow):
    """Members run in parallel; what follows waits for all of them."""

    __slots__ = ("members",)

    def __init__(self, *members: Step | Sequence[Step]) -> None:
        self.members = _steps("group", _flatten_args(members))

    def tasks(self) -> Iterator[Task]:
        for member in self.members:
            yield from _leaves(member)

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.members))})"


class Chord(Flow):
    """A group, then a callback receiving one result per member, in order."""

    __slots__ = ("callback", "header")

    def __init__(self, header: Iterable[Step] | Group, callback: Step) -> None:
        self.header = header if isinstance(header, Group) else Group(*header)
        if not isinstance(callback, Task | Flow):
            raise TypeError(
                f"a chord's callback is a strego.Task or a flow, got {type(callback).__name__}"
            )
        _steps("chord", (self.header, callback))  # no task twice across both parts
        self.callback: Step = callback

    def tasks(self) -> Iterator[Task]:
        yield from self.header.tasks()
        yield from _leaves(self.callback)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.callback!r})"


def chain(*steps: Step | Sequence[Step]) -> Chain:
    """``chain(a, b, c)``: ``b`` runs after ``a`` with ``upstream_results == [a's]``."""
    return Chain(*steps)


def group(*members: Step | Sequence[Step]) -> Group:
    """``group(a, b, c)`` (or ``group([a, b, c])``): run in parallel."""
    return Group(*members)


def chord(tasks: Iterable[Step] | Group, callback: Step) -> Chord:
    """``chord([a, b], cb)``: ``cb`` runs once after all, with their results in order."""
    return Chord(tasks, callback)
