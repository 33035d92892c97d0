"""chain/group/chord: validation at construction, the compiled graph, flow order."""

from __future__ import annotations

import pytest

import strego
from strego.workflows.graph import compile_flow


def t(name: str) -> strego.Task:
    return strego.Task(name, id=name)


def test_empty_flows_are_refused() -> None:
    """An empty chain, group or chord header is a ValueError when built."""
    for build in (strego.chain, strego.group):
        with pytest.raises(ValueError, match="empty"):
            build()
    with pytest.raises(ValueError, match="empty"):
        strego.chord([], t("cb"))


def test_a_task_appears_once() -> None:
    """Reusing a task (the only way to make a cycle) is refused, however nested."""
    a = t("a")
    with pytest.raises(ValueError, match="appears twice"):
        strego.chain(a, strego.group(t("b"), a))
    with pytest.raises(ValueError, match="appears twice"):
        strego.chord([a, t("b")], a)


def test_only_tasks_and_flows() -> None:
    with pytest.raises(TypeError, match=r"strego\.Task"):
        strego.chain(t("a"), "b")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback"):
        strego.chord([t("a")], "cb")  # type: ignore[arg-type]


def test_group_accepts_a_list() -> None:
    assert [task.id for task in strego.group([t("a"), t("b")]).tasks()] == ["a", "b"]


def test_dependencies_and_flow_order() -> None:
    """chain → group → chord → chain: depth-first order, deps in upstream order."""
    flow = strego.chain(
        t("a"),
        strego.group(t("b"), strego.chain(t("c"), t("d"))),
        strego.chord([t("e"), t("f")], strego.chain(t("g"), t("h"))),
    )
    graph = compile_flow(flow)
    ids = [node.task.id for node in graph.nodes]
    assert ids == list("abcdefgh")
    deps = {node.task.id: [ids[d] for d in node.deps] for node in graph.nodes}
    assert deps == {
        "a": [], "b": ["a"], "c": ["a"], "d": ["c"],
        "e": ["b", "d"], "f": ["b", "d"], "g": ["e", "f"], "h": ["g"],
    }  # fmt: skip
    assert graph.output == 7  # the last task of the chain
    assert graph.roots == [0]
    group = compile_flow(strego.group(t("x"), strego.chord([t("y")], t("z"))))
    assert group.output == [0, 2]
