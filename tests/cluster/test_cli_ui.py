"""The CLI and the web UI take cluster and sentinel URLs like any other."""

from __future__ import annotations

import asyncio
import contextlib
import io

import httpx
import pytest

import strego
from strego.cli.main import main
from strego.ui import create_app
from tests.cluster.conftest import Target

pytestmark = pytest.mark.cluster


def _run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


async def test_cli_lists_queues_on_every_topology(
    target: Target, prefix: str, client: strego.Client, queues: list[str]
) -> None:
    """`strego queues list --redis <url>` shows the queues of every master."""
    for queue in queues:
        await client.enqueue(strego.Task("t", queue=queue))
    argv = ["queues", "list", "--redis", target.url, "--prefix", prefix, "--group", "tests"]
    code, out = await asyncio.to_thread(_run_cli, argv)
    assert code == 0
    assert all(queue in out for queue in queues)


async def test_ui_dashboard_on_every_topology(
    broker: strego.RedisBroker, client: strego.Client, queues: list[str]
) -> None:
    """The UI's dashboard and queue pages render from a cluster or sentinel broker."""
    for queue in queues:
        await client.enqueue(strego.Task("t", queue=queue))
    transport = httpx.ASGITransport(app=create_app(broker))
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.localhost") as http:
        dashboard = await http.get("/")
        assert dashboard.status_code == 200
        assert all(f'data-queue="{queue}"' in dashboard.text for queue in queues)
        page = await http.get(f"/queues/{queues[2]}")
        assert page.status_code == 200
