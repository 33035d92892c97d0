"""``strego dead list|retry|retry-all|delete|purge``."""

from __future__ import annotations

import json
from collections.abc import Callable

import strego
from strego.testing import drain
from tests.cli.conftest import Cli


async def _dead_tasks(
    client: strego.Client, make_server: Callable[..., strego.Server], n: int, queue: str = "default"
) -> list[str]:
    """Make ``n`` dead tasks (and one completed one) in ``queue``."""
    server = make_server(queues=[queue])

    @server.handle("boom")
    async def boom(task: strego.Task) -> None:
        raise strego.SkipRetry(f"card declined #{task.payload}")

    server.handle("fine", lambda task: None)
    infos = await client.enqueue_many(
        [strego.Task("boom", i, queue=queue) for i in range(n)] + [strego.Task("fine", queue=queue)]
    )
    await drain(server)
    return [i.id for i in infos[:n] if isinstance(i, strego.TaskInfo)]


async def test_dead_list(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """dead list shows dead tasks newest first with their reason, and a count."""
    ids = await _dead_tasks(client, make_server, 3)
    result = await cli("dead", "list", "default")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "TYPE", "ATTEMPTS", "WHEN"]
    assert {line.split()[0] for line in lines[1:4]} == set(ids)
    assert "card declined" in lines[1]
    assert lines[-1] == "1-3 of 3 dead tasks in queue 'default'"
    page = await cli("dead", "list", "default", "--limit", "1", "--offset", "1")
    assert page.out.splitlines()[-1] == "2-2 of 3 dead tasks in queue 'default'"


async def test_dead_list_json_and_empty(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """--json lists records; an empty dead letter queue says so."""
    ids = await _dead_tasks(client, make_server, 2)
    data = json.loads((await cli("dead", "list", "default", "--json")).out)
    assert sorted(r["id"] for r in data) == sorted(ids)
    assert all(r["state"] == "dead" and r["dead_reason"] for r in data)
    await client.enqueue(strego.Task("x", queue="clean"))
    assert "no dead tasks in queue 'clean'" in (await cli("dead", "list", "clean")).out
    bad_limit = await cli("dead", "list", "default", "--limit", "0")
    assert bad_limit.code == 2 and "--limit: must be an integer >= 1, got 0" in bad_limit.err


async def test_dead_list_across_every_queue(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """Without QUEUE, dead list merges every queue's dead tasks, newest first."""
    first = await _dead_tasks(client, make_server, 2, queue="billing")
    second = await _dead_tasks(client, make_server, 1, queue="emails")
    result = await cli("dead", "list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["ID", "QUEUE", "TYPE"]
    listed = [line.split()[:2] for line in lines[1:4]]
    assert listed[0] == [second[0], "emails"]  # the newest
    assert sorted(i for i, q in listed[1:] if q == "billing") == sorted(first)
    assert lines[-1] == "1-3 of 3 dead tasks in 2 queues"
    page = await cli("dead", "list", "--limit", "1", "--offset", "2", "--json")
    assert [r["queue"] for r in json.loads(page.out)] == ["billing"]


async def test_dead_retry_and_delete(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """retry puts named dead tasks back to pending; delete removes them."""
    ids = await _dead_tasks(client, make_server, 3)
    result = await cli("dead", "retry", "default", ids[0], ids[1])
    assert result.code == 0
    assert result.out == f"retried {ids[0]}\nretried {ids[1]}\n"
    record = await inspector.get_task(ids[0])
    assert record is not None
    assert (record.state, record.retry_count) == (strego.TaskState.PENDING, 0)
    result = await cli("dead", "delete", "default", ids[2])
    assert result.out == f"deleted {ids[2]}\n"
    assert await inspector.get_task(ids[2]) is None
    assert (await inspector.queue_info("default")).dead == 0


async def test_dead_retry_errors_name_each_task(
    cli: Cli, client: strego.Client, make_server: Callable[..., strego.Server]
) -> None:
    """Unknown or not-dead ids are reported one per line; the others still happen."""
    ids = await _dead_tasks(client, make_server, 1)
    pending = await client.enqueue(strego.Task("later", process_in=600))
    result = await cli("dead", "retry", "default", "01NOPE", pending.id, ids[0])
    assert result.code == 1
    assert result.out == f"retried {ids[0]}\n"
    assert result.err.splitlines() == [
        "strego: error: task 01NOPE not found in queue 'default'",
        f"strego: error: task {pending.id} is scheduled, not dead",
    ]
    deleted = await cli("dead", "delete", "default", "01NOPE")
    assert deleted.code == 1


async def test_dead_retry_all(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """retry-all moves every dead task back to pending."""
    await _dead_tasks(client, make_server, 5)
    result = await cli("dead", "retry-all", "default")
    assert result.out == "retried 5 dead tasks of queue 'default'\n"
    assert result.err == ""  # no progress bar when not on a terminal
    info = await inspector.queue_info("default")
    assert (info.dead, info.pending) == (0, 5)


async def test_dead_retry_all_with_progress(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """--progress draws a bar on stderr, chunk by chunk, up to the total."""
    await _dead_tasks(client, make_server, 700)
    result = await cli("dead", "retry-all", "default", "--progress")
    assert result.out == "retried 700 dead tasks of queue 'default'\n"
    frames = result.err.strip("\n").split("\r")[1:]
    assert len(frames) == 3  # 0, after the first chunk of 500, after the rest
    assert "500/700" in frames[1]
    assert "700/700 100%" in frames[-1]
    assert (await inspector.queue_info("default")).dead == 0


async def test_dead_purge(
    cli: Cli,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: Callable[..., strego.Server],
) -> None:
    """purge asks, then deletes every dead task; completed ones stay."""
    await _dead_tasks(client, make_server, 4)
    refused = await cli("dead", "purge", "default", stdin="no\n")
    assert refused.code == 1
    assert (await inspector.queue_info("default")).dead == 4
    result = await cli("dead", "purge", "default", stdin="yes\n")
    assert "Delete 4 dead tasks of queue 'default'? [y/N]" in result.out
    assert result.out.endswith("deleted 4 dead tasks of queue 'default'\n")
    info = await inspector.queue_info("default")
    assert (info.dead, info.completed) == (0, 1)
    assert "no dead tasks" in (await cli("dead", "purge", "default", "--yes")).out
