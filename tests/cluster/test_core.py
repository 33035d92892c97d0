"""The core behaviour, unchanged on one Redis, a Redis Cluster and a Sentinel setup.

On the cluster the three queues live on three different masters, so each test
crosses nodes: pipelines split per node, scripts routed by their queue's slot,
wake-ups published inside scripts on one node and heard through another.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio

import strego
from tests.cluster.conftest import ServerFactory, Target
from tests.conftest import wait_until

pytestmark = pytest.mark.cluster


async def test_enqueue_and_process_on_every_queue(
    client: strego.Client, make_server: ServerFactory, queues: list[str]
) -> None:
    """Tasks enqueued one by one and pipelined across queues each run exactly once."""
    seen: list[tuple[str, int]] = []

    async def work(payload: dict[str, int], task: strego.Task) -> None:
        seen.append((task.queue, payload["i"]))

    await make_server({"w": work}, queues=queues)
    expected = []
    for i, queue in enumerate(queues):
        await client.enqueue(strego.Task("w", {"i": i}, queue=queue))
        expected.append((queue, i))
    batch = [strego.Task("w", {"i": 100 + i}, queue=queues[i % 3]) for i in range(30)]
    infos = await client.enqueue_many(batch)
    assert all(isinstance(i, strego.TaskInfo) and i.state == "pending" for i in infos)
    expected += [(t.queue, 100 + i) for i, t in enumerate(batch)]
    await wait_until(lambda: len(seen) >= len(expected))
    await asyncio.sleep(0.2)  # a duplicate run would show up now
    assert sorted(seen) == sorted(expected)


async def test_idle_worker_is_woken_from_every_master(
    client: strego.Client, make_server: ServerFactory, queues: list[str]
) -> None:
    """A worker idle for up to 30 s starts a new task at once on each queue (pub/sub)."""
    started: dict[str, float] = {}

    async def work(task: strego.Task) -> None:
        started[task.queue] = time.monotonic()

    await make_server({"w": work}, queues=queues, broker_options={"block": 30.0})
    await asyncio.sleep(0.5)  # every queue found empty: the worker now waits for a signal
    for queue in queues:
        sent = time.monotonic()
        await client.enqueue(strego.Task("w", queue=queue))
        await wait_until(lambda q=queue: q in started, timeout=5)
        assert started[queue] - sent < 2.0


async def test_idle_single_queue_workers_get_tasks_handed_over(
    client: strego.Client,
    make_server: ServerFactory,
    queues: list[str],
    broker: strego.RedisBroker,
) -> None:
    """One-hop pickup (handoff.py) on every topology: a worker per queue registers in its
    queue's slot, the enqueue script delivers to it and fills its inbox (a key the
    script derives, in the same slot), and each task runs once."""
    seen: list[str] = []

    async def work(task: strego.Task) -> None:
        seen.append(task.queue)

    servers = [await make_server({"w": work}, queues=[queue]) for queue in queues]
    for server, queue in zip(servers, queues, strict=True):
        consumer = server.broker.consumer
        await wait_until(
            lambda q=queue, c=consumer: broker.redis.hexists(broker.keys(q).handoff, c)
        )
    for queue in queues:
        await client.enqueue(strego.Task("w", queue=queue))
        await wait_until(lambda q=queue: q in seen, timeout=5)
    await asyncio.sleep(0.2)
    assert sorted(seen) == sorted(queues)


async def test_hand_off_fills_the_inbox_in_the_queues_slot(
    client: strego.Client, broker: strego.RedisBroker, queues: list[str]
) -> None:
    """The hand-off path itself (not the pub/sub fallback) works in every queue's slot."""
    await broker.prepare(queues)
    for queue in queues:
        assert (await broker.fetch([(queue, 1)], offer=True))[queue] == []
        info = await client.enqueue(strego.Task("w", queue=queue))
        assert await broker.redis.llen(broker.keys(queue).inbox(broker.consumer)) == 1
        handed = (await broker.fetch([(queue, 1)]))[queue] or []
        assert len(handed) == 1 and info.id.encode() in (handed[0].blob or b"")


async def test_retry_until_success(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """A failing task goes to its queue's retry set and runs again until it succeeds."""
    attempts: dict[str, list[int]] = {}

    async def flaky(task: strego.Task) -> None:
        attempts.setdefault(task.queue, []).append(task.retry_count)
        if task.retry_count < 2:
            raise RuntimeError("not yet")

    await make_server({"flaky": flaky}, queues=queues)
    for queue in queues:
        await client.enqueue(strego.Task("flaky", queue=queue, max_retry=3))
    await wait_until(lambda: all(attempts.get(q) == [0, 1, 2] for q in queues))

    async def settled() -> bool:
        infos = [await inspector.queue_info(q) for q in queues]
        return all((i.processed, i.failed, i.retried) == (1, 2, 2) for i in infos)

    await wait_until(settled)


async def test_scheduled_task_runs_when_due_and_can_be_cancelled(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """A scheduled task runs when due (not at the next 30 s poll); a cancelled one never."""
    ran: dict[str, float] = {}

    async def work(task: strego.Task) -> None:
        ran[task.id] = time.monotonic()

    await make_server({"w": work}, queues=queues, broker_options={"block": 30.0})
    await asyncio.sleep(0.3)
    sent = time.monotonic()
    due = await client.enqueue(strego.Task("w", queue=queues[1], process_in=0.5))
    doomed = await client.enqueue(strego.Task("w", queue=queues[2], process_in=0.5))
    assert due.state == doomed.state == "scheduled"
    record = await inspector.get_task(due.id)  # no queue given: looked up in every queue
    assert record is not None
    assert record.state == "scheduled"
    assert record.queue == queues[1]
    assert await client.cancel(doomed.id)  # found across queues, cancelled atomically
    await wait_until(lambda: due.id in ran, timeout=5)
    assert 0.45 <= ran[due.id] - sent < 2.5
    await asyncio.sleep(0.3)
    assert doomed.id not in ran
    cancelled = await inspector.get_task(doomed.id)
    assert cancelled is not None
    assert cancelled.state == "cancelled"


async def test_dead_letters_and_admin_retry(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """SkipRetry dead-letters a task at once; an admin retry runs it again."""
    runs: list[str] = []

    async def picky(task: strego.Task) -> None:
        runs.append(task.id)
        if runs.count(task.id) == 1:
            raise strego.SkipRetry("bad input")

    await make_server({"picky": picky}, queues=queues)
    infos = [await client.enqueue(strego.Task("picky", queue=q)) for q in queues]

    async def all_dead() -> bool:
        return [len(await inspector.dead_letters(q)) for q in queues] == [1, 1, 1]

    await wait_until(all_dead)
    dead = await inspector.dead_letters(queues[2])
    assert dead[0].id == infos[2].id
    assert dead[0].state == "dead"
    assert await inspector.retry(infos[2].id)  # no queue given: located across nodes
    await wait_until(lambda: runs.count(infos[2].id) == 2)
    assert await inspector.retry_all_dead(queues[0]) == 1  # reads Redis TIME: any node
    await wait_until(lambda: runs.count(infos[0].id) == 2)

    async def none_dead() -> bool:
        return await inspector.dead_letters(queues[2]) == []

    await wait_until(none_dead)


async def test_unique_keys_and_explicit_ids(
    client: strego.Client, make_server: ServerFactory, queues: list[str]
) -> None:
    """A unique key is held per queue; an explicit id that already ran is a no-op."""
    first = await client.enqueue(strego.Task("u", queue=queues[0], unique_key="k"))
    with pytest.raises(strego.DuplicateTaskError) as caught:
        await client.enqueue(strego.Task("u", queue=queues[0], unique_key="k"))
    assert caught.value.task_id == first.id
    other = await client.enqueue(strego.Task("u", queue=queues[1], unique_key="k"))
    assert other.state == "pending"
    mixed = await client.enqueue_many(
        [
            strego.Task("u", queue=queues[2], unique_key="m"),
            strego.Task("u", queue=queues[2], unique_key="m"),
            strego.Task("u", queue=queues[1], unique_key="k"),
        ]
    )
    assert isinstance(mixed[0], strego.TaskInfo)
    assert isinstance(mixed[1], strego.DuplicateTaskError)
    assert isinstance(mixed[2], strego.DuplicateTaskError)
    assert mixed[2].task_id == other.id

    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    await make_server({"u": work, "once": work}, queues=queues)
    await client.enqueue(strego.Task("once", id="order-17", queue=queues[2]))
    await wait_until(lambda: "order-17" in runs)
    await asyncio.sleep(0.2)  # the ack writes the processed marker
    again = await client.enqueue(strego.Task("once", id="order-17", queue=queues[2]))
    assert again.state == "completed"
    await asyncio.sleep(0.3)
    assert runs.count("order-17") == 1


async def test_crashed_consumer_work_is_reclaimed(
    target: Target,
    prefix: str,
    client: strego.Client,
    inspector: strego.Inspector,
    make_server: ServerFactory,
    queues: list[str],
) -> None:
    """Tasks a dead consumer held run elsewhere: via stale claim, or its removal."""
    crashed = strego.RedisBroker(target.url, prefix=prefix, group="tests", consumer="crashed")
    await crashed.prepare(queues)
    ids = [(await client.enqueue(strego.Task("w", queue=q))).id for q in queues]
    held = await crashed.fetch([(q, 10) for q in queues])  # delivered, never acked
    assert sum(len(d or []) for d in held.values()) == 3
    await crashed.aclose()
    # Removing the consumer hands its entries over, claimable at the next check.
    assert await inspector.remove_consumer(queues[0], "crashed")
    assert "crashed" not in {c.name for c in await inspector.consumers(queues[0])}

    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    await make_server(
        {"w": work},
        queues=queues,
        broker_options={"claim_stale_after": 0.5, "claim_check_interval": 0.1},
    )
    await wait_until(lambda: sorted(runs) == sorted(ids))
    await asyncio.sleep(0.3)
    assert sorted(runs) == sorted(ids)  # each once


async def test_pause_and_resume(
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """A paused queue holds its tasks; resume wakes the idle worker at once."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.queue)

    await inspector.pause(queues[1])
    await make_server({"w": work}, queues=queues, broker_options={"block": 30.0})
    await asyncio.sleep(0.3)
    await client.enqueue(strego.Task("w", queue=queues[1]))
    await asyncio.sleep(0.5)
    assert runs == []
    assert (await inspector.queue_info(queues[1])).paused
    await inspector.resume(queues[1])
    await wait_until(lambda: runs == [queues[1]], timeout=3)


async def test_inspector_reads_across_nodes(
    target: Target,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    queues: list[str],
) -> None:
    """Queue lists, workers, throughput and server info cover every master."""
    done: list[str] = []

    async def work(task: strego.Task) -> None:
        done.append(task.id)

    await make_server({"w": work}, queues=queues)
    await client.enqueue_many([strego.Task("w", queue=q) for q in queues for _ in range(2)])
    await wait_until(lambda: len(done) == 6)

    async def counted() -> bool:
        infos = await inspector.queues()
        return {i.name: i.processed for i in infos} == dict.fromkeys(queues, 2)

    await wait_until(counted)
    assert len(await inspector.workers()) == 1
    assert sum(p.processed for p in await inspector.throughput(minutes=2)) == 6
    info: dict[str, Any] = await inspector.redis_info()
    assert info["redis_version"]
    assert int(info["used_memory"]) > 0
    assert info.get("cluster_masters") == (3 if target.name == "cluster" else None)


async def test_sync_client_takes_the_url(
    target: Target, prefix: str, make_server: ServerFactory, queues: list[str]
) -> None:
    """SyncClient builds its broker from a cluster or sentinel URL like any other."""
    done: list[str] = []

    async def work(task: strego.Task) -> None:
        done.append(task.queue)

    await make_server({"w": work}, queues=queues)

    def produce() -> None:
        with strego.SyncClient(target.url, prefix=prefix, group="tests") as sync:
            for queue in queues:
                sync.enqueue(strego.Task("w", queue=queue))

    await asyncio.to_thread(produce)
    await wait_until(lambda: sorted(done) == sorted(queues))


async def test_wait_replicas(target: Target, prefix: str, queues: list[str]) -> None:
    """wait_replicas=1 returns once a replica of each master has the task, else fails."""
    broker = strego.RedisBroker(target.url, prefix=prefix)
    try:
        async with strego.Client(broker, wait_replicas=1, wait_timeout=0.3) as durable:
            tasks = [strego.Task("w", queue=q) for q in queues]
            if target.replicas == 0:
                with pytest.raises(strego.BrokerUnavailableError, match="replicas"):
                    await durable.enqueue_many(tasks)
                return
            await durable.enqueue_many(tasks)
        for task in tasks:
            assert await replica_has(target, broker.keys(task.queue).index, task.id)
    finally:
        await broker.aclose()


async def replica_has(target: Target, key: str, field: str) -> bool:
    """Read ``key`` on a replica of the master that owns it (no waiting, no redirects)."""
    assert target.replica_of is not None
    replica: Any
    async with redis.asyncio.Redis(port=target.replica_of(key)) as replica:
        if target.name == "cluster":
            execute: Any = replica.execute_command  # typed in some redis-py releases only
            await execute("READONLY")
        return bool(await replica.hexists(key, field))
