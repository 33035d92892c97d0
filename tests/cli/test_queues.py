"""``strego stats`` and ``strego queues list|pause|resume|purge``."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable

import pytest

import strego
from tests.cli.conftest import Cli


async def _fill(client: strego.Client) -> None:
    await client.enqueue_many([strego.Task("a") for _ in range(3)])
    await client.enqueue(strego.Task("b", process_in=3600))
    await client.enqueue(strego.Task("c", queue="other"))


async def test_stats_table(cli: Cli, client: strego.Client) -> None:
    """stats shows a row per queue with its counts, a TOTAL row, and a warning for
    each queue no live worker reads."""
    await _fill(client)
    result = await cli("stats")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("strego stats  redis://127.0.0.1:")
    assert lines[1].startswith("workers: 0 (0 of 0 slots busy)")
    header = lines[3].split()
    assert header[:7] == ["QUEUE", "STATE", "PENDING", "ACTIVE", "SCHEDULED", "RETRY", "DEAD"]
    table_end = lines.index("", 4)
    rows = {line.split()[0]: line.split() for line in lines[4:table_end]}
    assert lines[table_end + 1 :] == [
        "warning: no consumer reads queue 'default' (4 tasks wait for nobody): start a worker "
        "with --queues default, or if the name is a typo: strego queues delete default",
        "warning: no consumer reads queue 'other' (1 task waits for nobody): start a worker "
        "with --queues other, or if the name is a typo: strego queues delete other",
    ]
    assert rows["default"][1:5] == ["active", "3", "0", "1"]
    assert rows["other"][1:3] == ["active", "1"]
    assert rows["TOTAL"][1:3] == ["4", "0"]


async def test_stats_json(cli: Cli, client: strego.Client) -> None:
    """stats --json gives queues and workers as JSON."""
    await _fill(client)
    data = json.loads((await cli("stats", "--json")).out)
    by_name = {q["name"]: q for q in data["queues"]}
    assert (by_name["default"]["pending"], by_name["default"]["scheduled"]) == (3, 1)
    assert data["workers"] == []


async def test_stats_watch_refreshes(cli: Cli, client: strego.Client) -> None:
    """stats --watch --count 3 prints the table three times (not a TTY: one after another)."""
    await _fill(client)
    result = await cli("stats", "--watch", "--count", "3", "--interval", "0.05")
    assert result.code == 0
    assert result.out.count("strego stats  ") == 3
    assert "\x1b[" not in result.out  # no escape codes when the output is not a terminal


async def test_stats_on_an_empty_redis(cli: Cli) -> None:
    """With no queue yet, stats says so instead of printing an empty table."""
    result = await cli("stats")
    assert "no queues yet" in result.out


async def test_queues_list(cli: Cli, client: strego.Client) -> None:
    """queues list prints the table; --json the QueueInfo fields."""
    await _fill(client)
    assert "other" in (await cli("queues", "list")).out
    data = json.loads((await cli("queues", "list", "--json")).out)
    assert sorted(q["name"] for q in data) == ["default", "other"]


async def test_pause_and_resume(
    cli: Cli, client: strego.Client, inspector: strego.Inspector
) -> None:
    """pause sets the queue's paused flag; resume clears it."""
    await _fill(client)
    result = await cli("queues", "pause", "default")
    assert result.code == 0
    assert (await inspector.queue_info("default")).paused
    assert "paused" in (await cli("queues", "list")).out
    result = await cli("queues", "resume", "default")
    assert result.code == 0
    assert not (await inspector.queue_info("default")).paused


@pytest.mark.parametrize(
    "argv",
    [
        ["queues", "pause", "nope"],
        ["queues", "resume", "nope"],
        ["queues", "purge", "nope", "--yes"],
        ["queues", "delete", "nope", "--yes"],
        ["dead", "list", "nope"],
        ["dead", "retry-all", "nope"],
        ["dead", "purge", "nope", "--yes"],
        ["dead", "retry", "nope", "01ABC"],
        ["dead", "delete", "nope", "01ABC"],
    ],
    ids=" ".join,
)
async def test_unknown_queue_is_an_error(cli: Cli, client: strego.Client, argv: list[str]) -> None:
    """A queue Redis does not know is a one-line error listing the known ones."""
    await _fill(client)
    result = await cli(*argv)
    assert result.code == 1
    assert result.err == "strego: error: unknown queue 'nope' (known queues: default, other)\n"


async def test_purge_asks_first(
    cli: Cli, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Without --yes, purge asks; anything but yes deletes nothing."""
    await _fill(client)
    result = await cli("queues", "purge", "default", stdin="n\n")
    assert result.code == 1
    assert "Delete 4 waiting, scheduled and retry tasks of queue 'default'? [y/N]" in result.out
    assert "aborted: nothing deleted" in result.err
    no_answer = await cli("queues", "purge", "default")  # stdin closed: EOF means no
    assert no_answer.code == 1
    assert (await inspector.queue_info("default")).pending == 3
    result = await cli("queues", "purge", "default", stdin="y\n")
    assert result.code == 0
    assert "purged 4 tasks from queue 'default'" in result.out
    info = await inspector.queue_info("default")
    assert (info.pending, info.scheduled) == (0, 0)


async def test_purge_with_yes(cli: Cli, client: strego.Client, inspector: strego.Inspector) -> None:
    """--yes purges without a question; other queues are untouched."""
    await _fill(client)
    result = await cli("queues", "purge", "default", "--yes")
    assert result.out == "purged 4 tasks from queue 'default'\n"
    assert (await inspector.queue_info("other")).pending == 1
    again = await cli("queues", "purge", "default", "--yes")
    assert "has no waiting, scheduled or retry tasks" in again.out


async def test_running_tasks_count_as_active(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """A task a worker is running is ACTIVE, not PENDING (XPENDING's parsed reply)."""
    server = make_server(concurrency=2)
    started = asyncio.Semaphore(0)
    release = asyncio.Event()

    @server.handle("hold")
    async def hold(task: strego.Task) -> None:
        started.release()
        await release.wait()

    await client.enqueue_many([strego.Task("hold") for _ in range(3)])
    async with server:
        for _ in range(2):
            await asyncio.wait_for(started.acquire(), 10)
        info = await inspector.queue_info("default")
        assert (info.pending, info.active) == (1, 2)
        row = (await cli("stats")).out.splitlines()[4].split()
        assert row[:4] == ["default", "active", "1", "2"]
        release.set()


async def test_stats_watch_redraws_in_place_on_a_terminal(
    client: strego.Client, redis_url: str, prefix: str
) -> None:
    """On a terminal, --watch homes the cursor and clears before each redraw (plain ANSI)."""
    await _fill(client)
    out = await asyncio.to_thread(_run_in_pty, redis_url, prefix)
    assert out.count("\x1b[H\x1b[2J") == 2
    assert out.count("strego stats  ") == 2


def _run_in_pty(redis_url: str, prefix: str) -> str:
    primary, secondary = pty.openpty()
    argv = ["stats", "--watch", "--count", "2", "--interval", "0.05"]
    argv += ["--redis", redis_url, "--prefix", prefix, "--group", "tests"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "strego.cli.main", *argv], stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(10) == 0
    return b"".join(chunks).decode()


async def test_delete_a_typo_queue(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """queues delete asks, removes the queue and its tasks; a served queue is refused."""
    await _fill(client)
    await client.enqueue(strego.Task("t", queue="defualt"))
    refused = await cli("queues", "delete", "defualt", stdin="n\n")
    assert refused.code == 1 and "Delete queue 'defualt' and its 1 tasks? [y/N]" in refused.out
    result = await cli("queues", "delete", "defualt", "--yes")
    assert (result.code, result.out) == (0, "deleted queue 'defualt' and its 1 tasks\n")
    assert await inspector.known_queues() == ["default", "other"]
    server = make_server(queues=["default"])
    async with server:
        await _until_registered(inspector)
        busy = await cli("queues", "delete", "default", "--yes")
    assert busy.code == 1
    assert busy.err.startswith("strego: error: not deleted: queue 'default' is in use: served by")
    assert (await inspector.queue_info("default")).enqueued == 4  # nothing deleted


async def _until_registered(inspector: strego.Inspector) -> None:
    for _ in range(200):
        if await inspector.workers():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the worker never registered")
