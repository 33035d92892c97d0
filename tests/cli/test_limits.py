"""``strego limits``: the declared limiters, their use and keys, as a table and JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import strego
from tests.cli.conftest import Cli
from tests.conftest import wait_until


async def test_limits_table_keys_and_json(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """A keyed concurrency limit with one slot held shows in the table, by key, and
    in JSON; with no limits declared the command says how to declare one."""
    empty = await cli("limits")
    assert empty.code == 0 and "no limits declared" in empty.out
    release = asyncio.Event()
    running: list[str] = []

    async def export(payload: dict[str, str]) -> None:
        running.append(payload["tenant"])
        await release.wait()

    server = make_server()
    server.handle(
        "export",
        export,
        limits=[strego.ConcurrencyLimit("exports", 2, key=lambda t: t.payload["tenant"])],
    )
    async with server:
        await client.enqueue(strego.Task("export", {"tenant": "acme"}))
        await wait_until(lambda: running == ["acme"])
        table = await cli("limits", "--keys")
        assert table.code == 0, table.err
        assert "exports" in table.out and "concurrency" in table.out and "2 at once" in table.out
        assert "exports by key:" in table.out and "acme" in table.out
        data = json.loads((await cli("limits", "--json")).out)
        assert data[0]["name"] == "exports" and data[0]["in_use"] == 1
        assert data[0]["keys"][0]["key"] == "acme"
        release.set()
