"""Delivery semantics: idempotency keys, ownership, reclaim, leases, poison, garbage."""

from __future__ import annotations

import asyncio
from typing import Any

import strego
from strego.outcome import Succeeded
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import dead_at_least


def ghost(redis_url: str, prefix: str, consumer: str) -> strego.RedisBroker:
    """A broker acting as a worker that takes tasks and then dies (never acks)."""
    return strego.RedisBroker(redis_url, prefix=prefix, group="tests", consumer=consumer)


async def test_explicit_id_is_idempotent(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Enqueueing an explicit id again, while live or after it ran, is a no-op."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    first = await client.enqueue(strego.Task("w", id="order-42"))
    again = await client.enqueue(strego.Task("w", id="order-42"))
    assert first.id == again.id == "order-42"
    await make_server({"w": work})
    await wait_until(lambda: runs == ["order-42"])
    after = await client.enqueue(strego.Task("w", id="order-42"))
    assert after.state == "completed"
    await asyncio.sleep(0.3)
    assert runs == ["order-42"]
    assert (await inspector.queue_info("default")).enqueued == 1


async def test_late_ack_of_a_reclaimed_task_is_dropped(
    redis_url: str, prefix: str, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A frozen worker's late outcome cannot acknowledge the new owner's delivery."""
    info = await client.enqueue(strego.Task("w"))
    frozen, alive = ghost(redis_url, prefix, "frozen"), ghost(redis_url, prefix, "alive")
    try:
        await frozen.prepare(["default"])
        taken = (await frozen.fetch([("default", 1)]))["default"]
        assert taken
        claimed = (await alive.claim_stale("default", 0.0, 10)).deliveries
        assert [d.entry_id for d in claimed] == [taken[0].entry_id]
        lost = await frozen.apply([(taken[0], Succeeded(info.id))])
        assert lost == [info.id]
        record = await inspector.get_task(info.id)
        assert record is not None and record.state == "active" and record.worker == "alive"
        assert await alive.apply([(claimed[0], Succeeded(info.id))]) == []
        record = await inspector.get_task(info.id)
        assert record is not None and record.state == "completed"
        assert (await inspector.queue_info("default")).processed == 1
    finally:
        await frozen.aclose()
        await alive.aclose()


async def test_dead_workers_tasks_are_reclaimed(
    redis_url: str, prefix: str, client: strego.Client, make_server: ServerFactory
) -> None:
    """Tasks held by a consumer that died are reclaimed and run by a live worker."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    infos = await client.enqueue_many([strego.Task("w") for _ in range(5)])
    dead = ghost(redis_url, prefix, "dead-worker")
    await dead.prepare(["default"])
    assert len((await dead.fetch([("default", 5)]))["default"] or []) == 5
    await dead.aclose()
    await make_server(
        {"w": work},
        broker_options={"claim_stale_after": 0.3, "claim_check_interval": 0.1},
    )
    await wait_until(lambda: len(runs) == 5)
    assert sorted(runs) == sorted(i.id for i in infos if isinstance(i, strego.TaskInfo))


async def test_leases_keep_long_handlers_from_being_stolen(
    client: strego.Client, make_server: ServerFactory
) -> None:
    """A handler running 3x claim_stale_after, with two workers alive, runs exactly once."""
    runs: list[str] = []

    async def slow(task: strego.Task) -> None:
        runs.append(task.id)
        await asyncio.sleep(1.5)

    options: dict[str, Any] = {"claim_stale_after": 0.5, "claim_check_interval": 0.1}
    await make_server({"slow": slow}, broker_options=options)
    await make_server({"slow": slow}, broker_options=options)
    info = await client.enqueue(strego.Task("slow"))
    await asyncio.sleep(2.5)
    assert runs == [info.id]


async def test_poison_task_is_dead_lettered(
    redis_url: str,
    prefix: str,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """A task delivered max_deliveries times without an outcome goes to dead letters."""
    info = await client.enqueue(strego.Task("w"))
    for n in range(3):  # three workers took it and died
        dead = ghost(redis_url, prefix, f"victim-{n}")
        await dead.prepare(["default"])
        if n == 0:
            await dead.fetch([("default", 1)])
        else:
            await dead.claim_stale("default", 0.0, 1)
        await dead.aclose()

    async def work(task: strego.Task) -> None:
        raise AssertionError("a poison task must not run again")

    await make_server(
        {"w": work},
        max_deliveries=3,
        broker_options={"claim_stale_after": 0.1, "claim_check_interval": 0.1},
    )
    await wait_until(lambda: dead_at_least(inspector, 1))
    (record,) = await inspector.dead_letters("default")
    assert (record.id, record.dead_reason) == (info.id, "poison")


async def test_stable_consumer_reruns_its_own_pending_first(
    redis_url: str, prefix: str, client: strego.Client, make_server: ServerFactory
) -> None:
    """A worker restarting under a stable name re-runs what it held, without waiting."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    info = await client.enqueue(strego.Task("w"))
    before = ghost(redis_url, prefix, "pod-0")
    await before.prepare(["default"])
    assert (await before.fetch([("default", 1)]))["default"]
    await before.aclose()  # the pod died holding the task
    await make_server({"w": work}, broker_options={"consumer": "pod-0"})
    await wait_until(lambda: runs == [info.id], timeout=3)


async def test_idle_consumers_are_cleaned_up(
    redis_url: str,
    prefix: str,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """Consumers of dead workers idle past cleanup_idle are removed; what they held is
    handed over and taken by a live worker, never dropped."""
    await client.enqueue(strego.Task("held"))
    holder = ghost(redis_url, prefix, "holder")
    await holder.prepare(["default"])
    assert (await holder.fetch([("default", 1)]))["default"]
    stream = holder.keys("default").stream(0)
    await holder.redis.execute_command("XGROUP", "CREATECONSUMER", stream, "tests", "old-deploy")
    await holder.aclose()
    await asyncio.sleep(0.3)

    async def work(task: strego.Task) -> None:
        return None

    server = await make_server({"other": work}, cleanup_interval=0.1, cleanup_idle=0.2)
    await wait_until(lambda: _consumer_names(inspector, {server.broker.consumer}))
    (held,) = await inspector.list_tasks("default", "active") or await inspector.list_tasks(
        "default", "retry"
    )
    assert held.type == "held"  # no handler here: waiting for a worker that has one


async def _consumer_names(inspector: strego.Inspector, expected: set[str]) -> bool:
    return {c.name for c in await inspector.consumers("default")} == expected


async def test_worker_survives_redis_losing_its_data(
    client: strego.Client, make_server: ServerFactory, broker: strego.RedisBroker, prefix: str
) -> None:
    """Keys (groups included) vanish under a running worker: it logs, recreates, goes on."""
    gate, running = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def work(payload: dict[str, int]) -> None:
        if payload["n"] == 0:
            running.set()
            await gate.wait()
        done.append(payload["n"])

    await make_server({"w": work})
    await client.enqueue(strego.Task("w", {"n": 0}))
    await asyncio.wait_for(running.wait(), 10)
    keys = [k async for k in broker.redis.scan_iter(match=f"{prefix}:*")]
    await broker.redis.delete(*keys)  # as if Redis restarted without persistence
    gate.set()  # its outcome now has nowhere to land: dropped, logged
    await wait_until(lambda: done == [0])
    await client.enqueue(strego.Task("w", {"n": 1}))
    await wait_until(lambda: done == [0, 1], timeout=15)


async def test_replayed_ack_is_not_reported_lost(
    redis_url: str, prefix: str, client: strego.Client, inspector: strego.Inspector
) -> None:
    """An ack sent twice (its first reply was lost) lands once and is not reported lost."""
    info = await client.enqueue(strego.Task("w"))
    worker = ghost(redis_url, prefix, "w1")
    try:
        await worker.prepare(["default"])
        (delivery,) = (await worker.fetch([("default", 1)]))["default"] or []
        assert await worker.apply([(delivery, Succeeded(info.id))]) == []
        assert await worker.apply([(delivery, Succeeded(info.id))]) == []  # the replay
        assert (await inspector.queue_info("default")).processed == 1
    finally:
        await worker.aclose()


async def test_replayed_retry_and_dead_outcomes_are_not_reported_lost(
    redis_url: str, prefix: str, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A retry or dead-letter outcome sent twice lands once and is not reported lost."""
    from strego.envelope import decode
    from strego.outcome import Dead, DeadReason, Retry

    first = await client.enqueue(strego.Task("w"))
    second = await client.enqueue(strego.Task("w"))
    worker = ghost(redis_url, prefix, "w1")
    try:
        await worker.prepare(["default"])
        got = (await worker.fetch([("default", 2)]))["default"] or []
        by_id = {decode(d.blob or b"").id: d for d in got}
        message = decode(by_id[first.id].blob or b"").evolve(retry_count=1, last_error="x")
        retry = Retry(message, delay_s=60, duration_s=0)
        assert await worker.apply([(by_id[first.id], retry)]) == []
        assert await worker.apply([(by_id[first.id], retry)]) == []  # the replay
        dead_message = decode(by_id[second.id].blob or b"").evolve(dead_reason="skip_retry")
        dead = Dead(dead_message, DeadReason.SKIP_RETRY)
        assert await worker.apply([(by_id[second.id], dead)]) == []
        assert await worker.apply([(by_id[second.id], dead)]) == []  # the replay
        info = await inspector.queue_info("default")
        assert (info.retry, info.dead, info.retried, info.dead_total) == (1, 1, 1, 1)
    finally:
        await worker.aclose()
