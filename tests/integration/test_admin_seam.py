"""The admin seam against real Redis: QueueAdmin, pipelined reads, delete_queue, side effects."""

from __future__ import annotations

import asyncio
import threading

import pytest

import strego
from strego.admin_base import QueueAdmin
from strego.broker.base import QueueSignal, SignalKind
from strego.broker.redis.admin import RedisAdmin
from strego.errors import QueueInUseError
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory


async def test_inspector_runs_on_any_queue_admin(
    broker: strego.RedisBroker, client: strego.Client
) -> None:
    """An Inspector built on a QueueAdmin (here the Redis one, given directly) works alike."""
    admin: QueueAdmin = RedisAdmin(broker)
    inspector = strego.Inspector(admin)
    info = await client.enqueue(strego.Task("t", queue="emails"))
    assert await inspector.known_queues() == ["emails"]
    assert await inspector.group("emails") == "tests"
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "pending" and record.queue == "emails"


async def test_queues_reads_every_queue_at_once(
    client: strego.Client, inspector: strego.Inspector
) -> None:
    """queues() (one pipeline) agrees with queue_info() of each queue, in name order."""
    names = [f"q{n:02d}" for n in range(30)]
    for n, name in enumerate(names):
        await client.enqueue_many([strego.Task("t", queue=name) for _ in range(n % 4)])
        await client.enqueue(strego.Task("t", queue=name, process_in=60))
    together = await inspector.queues()
    one_by_one = [await inspector.queue_info(name) for name in names]
    assert [q.name for q in together] == names
    for a, b in zip(together, one_by_one, strict=True):
        assert (a.pending, a.scheduled, a.enqueued) == (b.pending, b.scheduled, b.enqueued)
    assert [q.pending for q in together] == [n % 4 for n in range(30)]
    assert await strego.Inspector(RedisAdmin(_empty(client))).queues() == []


def _empty(client: strego.Client) -> strego.RedisBroker:
    broker = client.broker
    assert isinstance(broker, strego.RedisBroker)
    return strego.RedisBroker(broker.redis, prefix="nothing-here", group="tests")


async def test_listings_of_every_state_are_whole(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Each state's listing (records loaded in one pipeline) returns complete records."""
    release = asyncio.Event()

    async def hold(task: strego.Task) -> None:
        await release.wait()

    infos = await client.enqueue_many([strego.Task("hold", {"i": i}) for i in range(3)])
    await client.enqueue(strego.Task("hold", {"later": True}, process_in=600))
    await make_server({"hold": hold}, concurrency=2)
    await wait_until(lambda: _active(inspector, 2))
    active = await inspector.list_tasks("default", "active")
    pending = await inspector.list_tasks("default", "pending")
    scheduled = await inspector.list_tasks("default", "scheduled")
    assert len(active) == 2 and all(r.worker and r.started_at for r in active)
    assert [r.payload for r in pending] == [{"i": 2}]
    assert [r.payload for r in scheduled] == [{"later": True}] and scheduled[0].process_at
    ids = {i.id for i in infos if isinstance(i, strego.TaskInfo)}
    assert {r.id for r in active + pending} == ids
    release.set()
    await wait_until(lambda: _completed(inspector, 3))
    completed = await inspector.list_tasks("default", "completed")
    assert {r.id for r in completed} == ids and all(r.state == "completed" for r in completed)


async def _active(inspector: strego.Inspector, n: int) -> bool:
    return (await inspector.queue_info("default")).active == n


async def _completed(inspector: strego.Inspector, n: int) -> bool:
    return (await inspector.queue_info("default")).completed == n


async def test_delete_queue_removes_every_key_and_the_name(
    client: strego.Client, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """A typo queue with waiting, scheduled and paused state disappears completely."""
    await client.enqueue_many([strego.Task("t", queue="defualt") for _ in range(3)])
    await client.enqueue(strego.Task("t", queue="defualt", process_in=60))
    await client.enqueue(strego.Task("t", queue="default"))
    await inspector.pause("defualt")
    assert await inspector.delete_queue("defualt") == 4
    assert await inspector.known_queues() == ["default"]
    tag = broker.keys("defualt").tag
    assert [k async for k in broker.redis.scan_iter(match=f"{tag}*")] == []
    assert (await inspector.queue_info("default")).pending == 1  # the other queue is intact


async def test_delete_queue_refuses_a_served_queue(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A queue a live worker reads is not deleted; the error names the worker."""
    await client.enqueue(strego.Task("t"))
    server = await make_server({"t": lambda task: None})
    await wait_until(lambda: _has_workers(inspector))
    with pytest.raises(QueueInUseError, match=server.broker.consumer):
        await inspector.delete_queue("default")
    assert await inspector.known_queues() == ["default"]


async def _has_workers(inspector: strego.Inspector) -> bool:
    return bool(await inspector.workers())


def test_queue_signal_kinds_are_typed() -> None:
    """The wire letter becomes a SignalKind; a stray message is UNKNOWN, not a crash."""
    assert QueueSignal("q", "w").kind is SignalKind.WORK
    assert QueueSignal("q", "c", "id1") == QueueSignal("q", SignalKind.CANCEL, "id1")
    assert QueueSignal("q", "hello").kind is SignalKind.UNKNOWN
    assert QueueSignal("q", "s").kind == "s"  # a StrEnum: the wire form still compares


async def test_sync_client_starts_its_thread_on_first_use(redis_url: str, prefix: str) -> None:
    """Constructing a SyncClient starts nothing; the first call does; close stops it."""

    def scenario() -> tuple[bool, bool, int, int]:
        threads = threading.active_count()
        sync = strego.SyncClient(redis_url, prefix=prefix, group="tests")
        idle = (sync.started, threading.active_count() - threads)
        sync.enqueue(strego.Task("t"))
        running = sync.started
        sync.close()
        unused = strego.SyncClient(redis_url, prefix=prefix, group="tests")
        unused.close()  # never started: nothing to stop
        with pytest.raises(RuntimeError, match="closed"):
            unused.enqueue(strego.Task("t"))
        return idle[0], running, idle[1], threading.active_count() - threads

    started_early, running, extra_before, extra_after = await asyncio.to_thread(scenario)
    assert (started_early, extra_before) == (False, 0)
    assert running and extra_after == 0
