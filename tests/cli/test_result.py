"""``strego task result ID [--wait SECONDS]`` and the result in ``strego task get``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import strego
from strego.testing import drain
from tests.cli.conftest import Cli


async def test_result_of_a_completed_task(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """A completed task's result prints as JSON (pretty, or one line with --json), and
    ``task get`` shows it under result:."""
    server = make_server()

    @server.handle("sum")
    async def total(payload: list[int]) -> dict[str, int]:
        return {"total": sum(payload)}

    info = await client.enqueue(strego.Task("sum", [1, 2, 3]))
    await drain(server, timeout=10)
    shown = await cli("task", "result", info.id)
    assert (shown.code, shown.out) == (0, '{\n  "total": 6\n}\n')
    one_line = await cli("task", "result", info.id, "--json")
    assert json.loads(one_line.out) == {"total": 6}
    got = await cli("task", "get", info.id)
    assert 'result:\n  {\n    "total": 6\n  }' in got.out
    data = json.loads((await cli("task", "get", info.id, "--json")).out)
    assert (data["result"], data["result_serializer"]) == ({"total": 6}, "json")


async def test_result_waits_then_reports_each_ending(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """--wait waits for the task; not finished exits 3, failed/unknown exit 1."""
    server = make_server()

    @server.handle("slow")
    async def slow(payload: Any) -> str:
        await asyncio.sleep(0.3)
        return "done"

    @server.handle("bad")
    async def bad(payload: Any) -> None:
        raise strego.SkipRetry("refused")

    pending = await client.enqueue(strego.Task("slow"))
    not_yet = await cli("task", "result", pending.id)
    assert not_yet.code == 3 and "has not finished" in not_yet.err
    async with server:
        waited = await cli("task", "result", pending.id, "--wait", "10")
        assert (waited.code, waited.out) == (0, '"done"\n')
        dead = await client.enqueue(strego.Task("bad"))
        failed = await cli("task", "result", dead.id, "--wait", "10s")
    assert failed.code == 1 and "failed (skip_retry): refused" in failed.err
    unknown = await cli("task", "result", "nope")
    assert unknown.code == 1 and "not found" in unknown.err
    bad_wait = await cli("task", "result", "nope", "--wait", "soon")
    assert bad_wait.code == 2
