"""One-hop idle pickup (broker/redis/handoff.py): an idle worker registered by its
fetch gets new tasks straight from the enqueue script, without breaking priority,
pause, capacity, withdrawal or the consumer-name hand-over at restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory

Q = "default"


@pytest.fixture
async def idle(redis_url: str, prefix: str) -> AsyncIterator[strego.RedisBroker]:
    """A broker acting as one idle worker (consumer "idle-1"), driven by hand."""
    broker = strego.RedisBroker(redis_url, prefix=prefix, group="tests", consumer="idle-1")
    await broker.prepare([Q])
    yield broker
    await broker.aclose()


async def register(broker: strego.RedisBroker, slots: int) -> None:
    found = await broker.fetch([(Q, slots)], offer=True)
    assert found[Q] == [], "nothing waiting: the fetch registers the consumer"
    assert await broker.redis.hexists(broker.keys(Q).handoff, broker.consumer)


async def pending_count(broker: strego.RedisBroker, entry_id: str, band: int) -> int:
    rows = await broker.redis.xpending_range(
        broker.keys(Q).stream(band), "tests", min=entry_id, max=entry_id, count=1
    )
    return int(rows[0]["times_delivered"]) if rows else 0


async def test_a_new_task_is_handed_to_the_registered_idle_worker(
    idle: strego.RedisBroker, client: strego.Client
) -> None:
    """Delivered by the enqueue itself: first delivery, in the worker's pending list,
    received with its body; the registration used up."""
    await register(idle, 1)
    info = await client.enqueue(strego.Task("w", {"n": 1}))
    handed = await idle.handoff.receive(Q)
    assert len(handed) == 1
    delivery = handed[0]
    assert (
        delivery.deliveries == 1 and delivery.blob is not None and info.id.encode() in delivery.blob
    )
    assert await pending_count(idle, delivery.entry_id, delivery.band) == 1
    assert not await idle.redis.hexists(idle.keys(Q).handoff, idle.consumer), "1 slot: used up"


async def test_priority_stays_exact_when_a_higher_band_waits(
    idle: strego.RedisBroker, client: strego.Client
) -> None:
    """A stream write that hands nothing over (enqueue_many here; a promote, a release)
    ends every registration, so a later enqueue never hands a low-priority task to a
    worker while a higher band waits: the worker fetches, highest band first."""
    await register(idle, 1)
    await client.enqueue_many([strego.Task("w", priority=9) for _ in range(2)])
    assert not await idle.redis.exists(idle.keys(Q).handoff), "registrations ended"
    await client.enqueue(strego.Task("w", priority=1))
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 0, "not handed over"
    found = await idle.fetch([(Q, 5)], offer=True)
    assert [d.band for d in found[Q] or []] == [9, 9, 1]


async def test_nothing_is_handed_over_while_paused(
    idle: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    await register(idle, 1)
    await inspector.pause(Q)
    await client.enqueue(strego.Task("w"))
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 0
    assert (await inspector.queue_info(Q)).pending == 1
    assert (await idle.fetch([(Q, 1)]))[Q] is None, "paused"


async def test_capacity_is_never_exceeded(
    idle: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Registered for 2: two tasks handed over, the third waits in the stream."""
    await register(idle, 2)
    for _ in range(3):
        await client.enqueue(strego.Task("w"))
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 2
    info = await inspector.queue_info(Q)
    assert (info.pending, info.active) == (1, 2), "delivered to the worker: active"


async def test_the_next_fetch_withdraws_and_returns_what_was_handed(
    idle: strego.RedisBroker, client: strego.Client
) -> None:
    """Handed but not received (the worker was busy elsewhere): the next fetch returns
    those deliveries and nothing is left in the inbox or the registry."""
    await register(idle, 3)
    infos = [await client.enqueue(strego.Task("w")) for _ in range(2)]
    found = (await idle.fetch([(Q, 3)], offer=False))[Q] or []
    assert sorted(i.id.encode() in (d.blob or b"") for d in found for i in infos).count(True) == 2
    assert len(found) == 2
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 0
    assert not await idle.redis.hexists(idle.keys(Q).handoff, idle.consumer)
    await client.enqueue(strego.Task("w"))
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 0, "withdrawn"


async def test_a_fetch_releases_a_waiting_receive(idle: strego.RedisBroker) -> None:
    await register(idle, 1)
    receive = asyncio.create_task(idle.handoff.receive(Q))
    await wait_until(lambda: _blocked_clients(idle))  # the BLPOP is waiting in Redis
    started = time.monotonic()
    await idle.fetch([(Q, 0)], offer=True, unblock=True)
    assert await asyncio.wait_for(receive, 0.5) == []
    assert time.monotonic() - started < idle.handoff.receive_timeout_s


async def test_an_expired_registration_is_dropped_not_used(
    idle: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A worker that died idle: past its deadline the enqueue ignores and removes it."""
    await register(idle, 1)
    key = idle.keys(Q).handoff
    await idle.redis.hset(key, idle.consumer, b"1|1000|tests")  # deadline long past
    await client.enqueue(strego.Task("w"))
    assert not await idle.redis.hexists(key, idle.consumer)
    assert await idle.redis.llen(idle.keys(Q).inbox(idle.consumer)) == 0
    assert len((await idle.fetch([(Q, 1)]))[Q] or []) == 1, "still waiting, for anyone"


async def test_an_idle_server_starts_a_task_in_one_hop_and_renews_its_offer(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """A real Server: idle, registered; tasks arrive by hand-off and run once each; the
    registration is renewed while idle and withdrawn at stop."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    server = await make_server({"w": work}, concurrency=2)
    key = broker.keys(Q).handoff
    await wait_until(lambda: broker.redis.hexists(key, broker_of(server).consumer))
    ids = []
    for _ in range(5):
        ids.append((await client.enqueue(strego.Task("w"))).id)
        await wait_until(lambda: len(runs) == len(ids))
    assert sorted(runs) == sorted(ids)
    await asyncio.sleep(2.5)  # past one registration lifetime: still registered
    assert await broker.redis.hexists(key, broker_of(server).consumer)
    await server.stop()
    assert not await broker.redis.hexists(key, broker_of(server).consumer), "withdrawn at stop"


async def test_concurrency_holds_with_hand_offs(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Tasks arriving one by one at an idle worker of concurrency 2: never 3 at once."""
    running, peak, done = 0, 0, 0

    async def work(task: strego.Task) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done += 1

    server = await make_server({"w": work}, concurrency=2)
    consumer = broker_of(server).consumer
    await wait_until(lambda: broker.redis.hexists(broker.keys(Q).handoff, consumer))
    for _ in range(12):
        await client.enqueue(strego.Task("w"))
        await asyncio.sleep(0.01)
    await wait_until(lambda: done == 12, timeout=10)
    assert peak == 2


async def test_a_restart_under_the_same_name_never_runs_what_its_predecessor_was_handed(
    redis_url: str, prefix: str, client: strego.Client, make_server: ServerFactory
) -> None:
    """A worker died registered, with a task in its inbox (delivered to its name). Its
    successor under that name hands it over (take_over) instead of reading the inbox:
    the task runs exactly once."""
    dead = strego.RedisBroker(redis_url, prefix=prefix, group="tests", consumer="pod-0")
    try:
        await dead.prepare([Q])
        await dead.fetch([(Q, 1)], offer=True)
        info = await client.enqueue(strego.Task("w"))
        assert await dead.redis.llen(dead.keys(Q).inbox("pod-0")) == 1
    finally:
        await dead.aclose()
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    await make_server({"w": work}, broker_options={"consumer": "pod-0"})
    await wait_until(lambda: runs == [info.id], timeout=10)
    await asyncio.sleep(0.5)
    assert runs == [info.id]


async def test_a_cancel_right_after_a_hand_off_ends_in_one_state(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector, broker: Any
) -> None:
    """Enqueued to an idle worker (handed over, started within a millisecond) and
    cancelled right after: the running handler is interrupted or has already finished
    (docs/guarantees.md: a cancel reaches a started handler by interrupting it), never
    both: a cancelled task's handler did not complete, a completed one ran once."""
    started: list[str] = []
    finished: list[str] = []

    async def work(task: strego.Task) -> None:
        started.append(task.id)
        await asyncio.sleep(0.2)
        finished.append(task.id)

    server = await make_server({"w": work})
    consumer = broker_of(server).consumer
    await wait_until(lambda: broker.redis.hexists(broker.keys(Q).handoff, consumer))
    info = await client.enqueue(strego.Task("w"))
    assert await client.cancel(info.id)
    await wait_until(lambda: _finished(inspector, info.id), timeout=10)
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "cancelled"
    assert finished == [] and len(started) <= 1


async def _blocked_clients(broker: strego.RedisBroker) -> int:
    return int((await broker.redis.info("clients"))["blocked_clients"])


def broker_of(server: strego.Server) -> strego.RedisBroker:
    broker = server.broker
    assert isinstance(broker, strego.RedisBroker)
    return broker


async def _finished(inspector: strego.Inspector, task_id: str) -> bool:
    record = await inspector.get_task(task_id)
    return record is not None and record.state in ("completed", "cancelled")


async def test_a_wake_up_while_registered_is_served_at_concurrency_1(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Concurrency 1, idle and registered (its only slot offered, a receive waiting): a
    due scheduled task arrives by pub/sub, not by hand-off. The worker withdraws
    (releasing its receive), runs it, and is handed the next task as before."""
    started: dict[str, float] = {}

    async def work(task: strego.Task) -> None:
        started[task.id] = time.monotonic()

    server = await make_server({"w": work}, concurrency=1)
    consumer = broker_of(server).consumer
    await wait_until(lambda: broker.redis.hexists(broker.keys(Q).handoff, consumer))
    due = await client.enqueue(strego.Task("w", process_in=0.3))
    sent = time.monotonic()
    await wait_until(lambda: due.id in started, timeout=5)
    assert started[due.id] - sent < 1.5, "promoted and run without waiting out `block`"
    await wait_until(lambda: broker.redis.hexists(broker.keys(Q).handoff, consumer))
    nxt = await client.enqueue(strego.Task("w"))
    await wait_until(lambda: nxt.id in started, timeout=5)


async def test_a_handed_task_reclaimed_meanwhile_is_not_returned_by_the_next_fetch(
    idle: strego.RedisBroker, client: strego.Client, redis_url: str, prefix: str
) -> None:
    """A worker stalls right after a task is handed to it; another worker reclaims the
    task. When the stalled worker resumes, its next fetch must not give it that task
    (it would run twice at once; found by the model test)."""
    await register(idle, 1)
    await client.enqueue(strego.Task("w"))
    other = strego.RedisBroker(redis_url, prefix=prefix, group="tests", consumer="other")
    try:
        reclaimed = (await other.claim_stale(Q, 0.0, 10)).deliveries
        assert len(reclaimed) == 1
    finally:
        await other.aclose()
    found = await idle.fetch([(Q, 1)], offer=True)
    assert found[Q] == [], "the reclaimed task is not ours any more"
