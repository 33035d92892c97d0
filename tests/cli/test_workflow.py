"""``strego workflow get|cancel``."""

from __future__ import annotations

import json

import strego
from tests.cli.conftest import Cli


async def test_workflow_get_and_cancel(cli: Cli, client: strego.Client) -> None:
    """get lists every task with its state (text and JSON); cancel cancels the unfinished."""
    flow = strego.chain(strego.Task("a"), strego.group(strego.Task("b"), strego.Task("c")))
    info = await client.enqueue(flow)
    result = await cli("workflow", "get", info.id)
    assert result.code == 0, result.err
    assert f"workflow {info.id}: running (3 tasks)" in result.out
    assert "waiting" in result.out and f"after {info.task_ids[0]}" in result.out
    data = json.loads((await cli("workflow", "get", info.id, "--json")).out)
    assert [t["state"] for t in data["tasks"]] == ["pending", "waiting", "waiting"]
    member = await cli("task", "get", info.task_ids[0])
    assert f"workflow     {info.id}" in member.out
    result = await cli("workflow", "cancel", info.id)
    assert result.code == 0, result.err
    assert "3 task(s) cancelled" in result.out
    data = json.loads((await cli("workflow", "get", info.id, "--json")).out)
    assert data["state"] == "cancelled"
    assert [t["state"] for t in data["tasks"]] == ["cancelled"] * 3
    missing = await cli("workflow", "get", "wf_nope")
    assert missing.code == 1 and "not found" in missing.err
