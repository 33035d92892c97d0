"""``strego task get|cancel``."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import strego
from strego.testing import drain
from tests.cli.conftest import Cli
from tests.conftest import wait_until


async def test_get_pretty_prints_every_field(cli: Cli, client: strego.Client) -> None:
    """task get shows id, state, options, labels and the payload as indented JSON."""
    task = strego.Task(
        "email:send", {"to": "a@example.com"}, priority=3, labels={"team": "growth"}, timeout=9
    )
    await client.enqueue(task)
    result = await cli("task", "get", task.id)
    assert result.code == 0, result.err
    head = result.out.split("\n\npayload:")[0]
    fields: dict[str, str] = {}
    for line in head.splitlines():
        name, value = re.split(r"\s{2,}", line, maxsplit=1)
        fields[name] = value
    assert fields["id"] == task.id
    assert fields["state"] == "pending"
    assert fields["priority"] == "3"
    assert fields["timeout"] == "9s"
    assert fields["labels"] == "team=growth"
    assert '  {\n    "to": "a@example.com"\n  }' in result.out


async def test_get_json(cli: Cli, client: strego.Client) -> None:
    """task get --json is machine-readable, payload decoded and base64 both."""
    info = await client.enqueue(strego.Task("x", [1, 2], queue="q1"))
    data = json.loads((await cli("task", "get", info.id, "--json")).out)
    assert (data["id"], data["state"], data["queue"], data["payload"]) == (
        info.id,
        "pending",
        "q1",
        [1, 2],
    )
    assert data["payload_base64"] == "WzEsMl0="


async def test_get_shows_the_traceback_of_a_dead_task(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """A dead task's last error, reason and traceback are printed."""
    server = make_server()

    @server.handle("boom")
    async def boom(task: strego.Task) -> None:
        raise ValueError("bad input")

    info = await client.enqueue(strego.Task("boom", max_retry=0))
    await drain(server)
    result = await cli("task", "get", info.id)
    assert "state        dead" in result.out
    assert "ValueError: bad input" in result.out
    assert "traceback:" in result.out


async def test_get_unknown_task(cli: Cli) -> None:
    """An unknown id is a one-line error, exit 1."""
    result = await cli("task", "get", "01NOPE")
    assert result.code == 1
    assert result.err.startswith("strego: error: task 01NOPE not found in any queue")


async def test_cancel_a_waiting_task(
    cli: Cli, client: strego.Client, inspector: strego.Inspector
) -> None:
    """task cancel cancels a scheduled task at once."""
    info = await client.enqueue(strego.Task("x", process_in=600))
    result = await cli("task", "cancel", info.id)
    assert result.out == f"cancelled task {info.id} (was scheduled)\n"
    record = await inspector.get_task(info.id)
    assert record is not None
    assert record.state == strego.TaskState.CANCELLED


async def test_cancel_a_running_task(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """Cancelling a running task asks its worker to stop it."""
    server = make_server()
    started, stopped = asyncio.Event(), asyncio.Event()

    @server.handle("slow")
    async def slow(task: strego.Task) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.set()

    info = await client.enqueue(strego.Task("slow"))
    async with server:
        await asyncio.wait_for(started.wait(), 10)
        result = await cli("task", "cancel", info.id)
        assert result.code == 0
        assert "cancel requested for running task" in result.out
        await asyncio.wait_for(stopped.wait(), 10)

        async def cancelled() -> bool:
            record = await inspector.get_task(info.id)
            return record is not None and record.state == strego.TaskState.CANCELLED

        await wait_until(cancelled)


async def test_cancel_errors(cli: Cli, client: strego.Client) -> None:
    """Cancelling an unknown or already cancelled task is an error."""
    assert (await cli("task", "cancel", "01NOPE")).code == 1
    info = await client.enqueue(strego.Task("x"))
    assert (await cli("task", "cancel", info.id)).code == 0
    again = await cli("task", "cancel", info.id)
    assert again.code == 1
    assert again.err == f"strego: error: task {info.id} is cancelled: nothing to cancel\n"
