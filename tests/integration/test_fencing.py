"""Delivery core, round 2: each reproduced failure of the adversarial review, as a test.

A "ghost" is a consumer that takes entries with a raw XREADGROUP and dies: it goes
through no strego code, so these tests do not depend on the broker's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

import strego
from strego.broker.redis.keys import QueueKeys
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import dead_at_least, state_is

FAST = {"claim_stale_after": 0.3, "claim_check_interval": 0.1}


async def ghost_takes(
    redis_url: str, prefix: str, count: int, *, consumer: str = "ghost", group: str = "tests"
) -> list[str]:
    """A consumer reads ``count`` entries of the default queue's band 0, then dies."""
    stream = QueueKeys(prefix, "default").stream(0)
    r: Any
    async with aioredis.Redis.from_url(redis_url) as r:
        with contextlib.suppress(aioredis.ResponseError):  # BUSYGROUP: a worker made it
            await r.xgroup_create(stream, group, id="0", mkstream=True)
        reply = await r.xreadgroup(group, consumer, {stream: ">"}, count=count)
    return [eid.decode() for _, entries in reply for eid, _ in entries]


async def pending_owners(redis_url: str, prefix: str, group: str = "tests") -> dict[str, str]:
    stream = QueueKeys(prefix, "default").stream(0)
    r: Any
    async with aioredis.Redis.from_url(redis_url) as r:
        rows = await r.xpending_range(stream, group, "-", "+", 100_000)
    return {row["message_id"].decode(): row["consumer"].decode() for row in rows}


async def test_cancelled_task_held_by_a_dead_consumer_never_runs(
    redis_url: str,
    prefix: str,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """cancel() of a task a dead consumer held: the reclaimer finishes it as cancelled."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    info = await client.enqueue(strego.Task("w"))
    assert await ghost_takes(redis_url, prefix, 1)
    assert await client.cancel(info.id) is True
    await make_server({"w": work}, broker_options=FAST)
    await wait_until(lambda: state_is(inspector, info.id, "cancelled"))
    await client.enqueue(strego.Task("w", id="after"))  # the worker is alive and working
    await wait_until(lambda: runs == ["after"])


async def test_stalled_worker_does_not_reclaim_its_own_running_task(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A handler that blocks the loop past claim_stale_after runs once, not twice."""
    runs: list[str] = []

    async def stall(task: strego.Task) -> None:
        runs.append(task.id)
        time.sleep(1.0)  # noqa: ASYNC251 - a GC pause / suspended VM: the loop stops
        await asyncio.sleep(0.5)  # the handler goes on: every overdue timer fires now

    server = await make_server(
        {"stall": stall}, broker_options={"claim_stale_after": 0.4, "claim_check_interval": 0.1}
    )
    info = await client.enqueue(strego.Task("stall"))
    await wait_until(lambda: state_is(inspector, info.id, "completed"))
    await wait_until(lambda: server.in_flight == 0)
    await client.enqueue(strego.Task("stall", id="next", process_in=0))
    await wait_until(lambda: state_is(inspector, "next", "completed"))
    assert runs == [info.id, "next"]


async def test_reclaim_goes_to_a_worker_with_free_slots(
    redis_url: str, prefix: str, client: strego.Client, make_server: ServerFactory
) -> None:
    """A busy worker does not hoard a stale task; an idle one starts it at once."""
    started: dict[str, str] = {}
    release = asyncio.Event()

    def handler(name: str) -> Any:
        async def work(task: strego.Task) -> None:
            started[task.id] = name
            if task.id == "long":
                await release.wait()

        return work

    stale = await client.enqueue(strego.Task("w", id="stale"))
    assert await ghost_takes(redis_url, prefix, 1)
    busy = await make_server({"w": handler("busy")}, concurrency=1, broker_options=FAST)
    await client.enqueue(strego.Task("w", id="long"))
    await wait_until(lambda: started.get("long") == "busy")
    await make_server({"w": handler("idle")}, concurrency=4, broker_options=FAST)
    try:
        await wait_until(lambda: stale.id in started, timeout=5)
        assert started[stale.id] == "idle"
        assert busy.in_flight == 1
    finally:
        release.set()


async def test_cancel_with_the_default_group_does_not_destroy_a_running_task(
    redis_url: str, prefix: str, make_server: ServerFactory
) -> None:
    """A Client/Inspector left on the default group cannot delete another group's
    running task: it uses the group recorded for the queue."""
    running, finish = asyncio.Event(), asyncio.Event()

    async def work(task: strego.Task) -> None:
        running.set()
        await finish.wait()

    server_broker_options: dict[str, Any] = {"group": "my-app"}
    await make_server({"w": work}, broker_options=server_broker_options)
    stranger = strego.RedisBroker(redis_url, prefix=prefix)  # no group given
    try:
        async with strego.Client(stranger) as client:
            info = await client.enqueue(strego.Task("w"))
            await asyncio.wait_for(running.wait(), 10)
            inspector = strego.Inspector(stranger)
            assert await inspector.delete(info.id) is False  # running: refused
            assert await inspector.purge_queue("default") == 0
            record = await inspector.get_task(info.id)
            assert record is not None and record.state == "active"
            assert await client.cancel(info.id) is True  # a request to the running handler
            await wait_until(lambda: state_is(inspector, info.id, "cancelled"))
    finally:
        finish.set()
        await stranger.aclose()


async def test_a_second_group_on_a_queue_is_refused(
    redis_url: str, prefix: str, make_server: ServerFactory
) -> None:
    """Two applications naming different groups for one queue: the second cannot start."""
    await make_server({}, broker_options={"group": "app-a"})
    with pytest.raises(strego.ConfigurationError, match="app-a"):
        await make_server({}, broker_options={"group": "app-b"})
    other = strego.RedisBroker(redis_url, prefix=prefix, group="app-b")
    try:
        with pytest.raises(strego.ConfigurationError, match="app-a"):
            await strego.Client(other).cancel("some-id", queue="default")
    finally:
        await other.aclose()


def test_unique_ttl_that_rounds_to_zero_is_refused() -> None:
    """unique_ttl below a millisecond fails at construction, not at enqueue."""
    with pytest.raises(ValueError, match="unique_ttl"):
        strego.Task("t", unique_key="k", unique_ttl=0.0004)


async def test_enqueue_many_is_all_or_nothing_per_chunk(
    client: strego.Client, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """A chunk that fails inside the script enqueues none of its tasks."""
    await broker.redis.hset(broker.keys("default").unique("k3"), "not", "a string")
    tasks = [strego.Task("t", unique_key=f"k{n}") for n in range(5)]
    with pytest.raises(Exception, match=r"WRONGTYPE|unique"):
        await client.enqueue_many(tasks)
    assert (await inspector.queue_info("default")).pending == 0
    for task in tasks:
        assert await inspector.get_task(task.id) is None


async def test_garbage_in_every_band_gets_a_dead_letter_each(
    broker: strego.RedisBroker, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Malformed entries with one id in all 11 band streams: 11 dead letters, none lost."""
    keys = broker.keys("default")
    await make_server({}, start=True)
    pipe = broker.redis.pipeline(transaction=True)
    for stream in keys.streams:
        pipe.xadd(stream, {b"d": b"not a task"}, id="9999999999999-1")
    await pipe.execute()
    await broker.redis.publish(keys.channel, b"w")
    await wait_until(lambda: dead_at_least(inspector, 11))
    letters = await inspector.dead_letters("default", limit=50)
    assert len({r.id for r in letters}) == 11
    assert all(r.dead_reason == "malformed" for r in letters)


async def test_dead_letters_are_trimmed_by_age_on_a_timer(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """Old dead letters go even when no new one arrives to trigger the trim."""

    async def fail(task: strego.Task) -> None:
        raise strego.SkipRetry("no")

    await make_server({"f": fail}, dead_letter_ttl=0.5)
    await client.enqueue_many([strego.Task("f") for _ in range(3)])
    await wait_until(lambda: dead_at_least(inspector, 3))
    await wait_until(lambda: _dead_count_is(inspector, 0), timeout=5)


async def _dead_count_is(inspector: strego.Inspector, n: int) -> bool:
    return (await inspector.queue_info("default")).dead == n


async def test_due_task_whose_body_vanished_is_dead_lettered(
    broker: strego.RedisBroker,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """promote finds a due task without its body: a `lost` dead letter, not silence."""
    info = await client.enqueue(strego.Task("w", process_in=0.3))
    await broker.redis.hdel(broker.keys("default").bodies, info.id)
    await make_server({})
    await wait_until(lambda: dead_at_least(inspector, 1))
    record = await inspector.get_task(info.id)
    assert record is not None and (record.state, record.dead_reason) == ("dead", "lost")


async def test_entry_deleted_under_a_running_task_is_dead_lettered_once(
    redis_url: str,
    prefix: str,
    broker: strego.RedisBroker,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """XDEL of a running task's entry: renew dead-letters it as lost under its id,
    acknowledged, its index record gone from the pending state."""
    running, finish = asyncio.Event(), asyncio.Event()

    async def work(task: strego.Task) -> None:
        running.set()
        await finish.wait()

    await make_server({"w": work}, broker_options={"claim_stale_after": 0.3})
    info = await client.enqueue(strego.Task("w"))
    await asyncio.wait_for(running.wait(), 10)
    (entry_id,) = await pending_owners(redis_url, prefix)
    await broker.redis.xdel(broker.keys("default").stream(0), entry_id)
    await wait_until(lambda: state_is(inspector, info.id, "dead"))
    finish.set()
    record = await inspector.get_task(info.id)
    assert record is not None and record.dead_reason == "lost"
    assert await pending_owners(redis_url, prefix) == {}
    assert (await inspector.queue_info("default")).dead == 1


async def test_removing_a_consumer_hands_over_everything(
    redis_url: str, prefix: str, client: strego.Client, inspector: strego.Inspector
) -> None:
    """remove_consumer with more than 10 000 pending entries hands all of them over."""
    n = 10_050
    await client.enqueue_many([strego.Task("w") for _ in range(n)])
    assert len(await ghost_takes(redis_url, prefix, n, consumer="big")) == n
    assert await inspector.remove_consumer("default", "big") is True
    owners = await pending_owners(redis_url, prefix)
    assert len(owners) == n and "big" not in owners.values()
    assert "big" not in {c.name for c in await inspector.consumers("default")}


async def test_cleanup_hands_over_what_an_idle_dead_consumer_holds(
    redis_url: str,
    prefix: str,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
) -> None:
    """Idle-consumer cleanup of a consumer that holds entries: they are run, not dropped;
    a live worker (registered, however idle) is never removed."""
    runs: list[str] = []

    async def work(task: strego.Task) -> None:
        runs.append(task.id)

    info = await client.enqueue(strego.Task("w"))
    assert await ghost_takes(redis_url, prefix, 1, consumer="gone")
    idle_worker = await make_server({}, queues=["default"], cleanup_interval=None)
    stream = QueueKeys(prefix, "default").stream(0)  # a live worker that once read, idle now
    await idle_worker.broker.redis.execute_command(  # type: ignore[attr-defined]
        "XGROUP", "CREATECONSUMER", stream, "tests", idle_worker.broker.consumer
    )
    await make_server(
        {"w": work},
        cleanup_interval=0.1,
        cleanup_idle=0.2,
        broker_options={"claim_stale_after": 30, "claim_check_interval": 30},
    )
    await wait_until(lambda: runs == [info.id], timeout=10)
    names = {c.name for c in await inspector.consumers("default")}
    assert "gone" not in names and idle_worker.broker.consumer in names


async def test_transient_errors_on_an_outcome_never_rerun_the_task(
    redis_url: str,
    broker: strego.RedisBroker,
    client: strego.Client,
    make_server: ServerFactory,
    inspector: strego.Inspector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """READONLY (a failover) and BUSY (a slow script) replies to an ack are retried until
    it lands: the task is never released for another run."""
    runs: list[str] = []
    proceed = asyncio.Event()

    async def work(task: strego.Task) -> None:
        runs.append(task.id)
        await proceed.wait()

    await make_server({"w": work}, broker_options=FAST)
    admin = broker.redis
    try:
        for trouble in ("readonly", "busy"):
            proceed.clear()
            info = await client.enqueue(strego.Task("w", id=f"t-{trouble}"))
            await wait_until(lambda info=info: info.id in runs)
            hog = await _make_trouble(trouble, admin, redis_url)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="strego"):
                proceed.set()
                # several refused ack attempts, each a chance to release the task wrongly
                await wait_until(lambda: _refusals(caplog) >= 3)
            await _healthy(admin, hog)
            await wait_until(lambda info=info: state_is(inspector, info.id, "completed"))
    finally:
        await _healthy(admin, None)
    assert runs == ["t-readonly", "t-busy"]


async def _make_trouble(trouble: str, admin: Any, redis_url: str) -> asyncio.Task[Any] | None:
    if trouble == "readonly":
        await admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a master nobody runs
        return None
    await admin.config_set("lua-time-limit", "50")
    hog_client: Any = aioredis.Redis.from_url(redis_url)

    async def hog() -> None:
        with contextlib.suppress(aioredis.ResponseError):  # "killed by user"
            await hog_client.eval("while true do end", 0)
        await hog_client.aclose()

    task = asyncio.create_task(hog())
    await wait_until(lambda: _busy(admin))
    return task


async def _busy(admin: Any) -> bool:
    try:
        await admin.ping()
    except aioredis.ResponseError as exc:
        return "BUSY" in str(exc)
    return False


async def _healthy(admin: Any, hog: asyncio.Task[Any] | None) -> None:
    if hog is not None:
        await wait_until(lambda: _killed(admin))
        await hog
    await admin.execute_command("REPLICAOF", "NO", "ONE")
    await admin.config_set("lua-time-limit", "5000")


async def _killed(admin: Any) -> bool:
    with contextlib.suppress(aioredis.ResponseError):
        await admin.script_kill()
    return not await _busy(admin)


def _refusals(caplog: pytest.LogCaptureFixture) -> int:
    return sum("could not record" in r.getMessage() for r in caplog.records)


async def test_maxmemory_policy_that_evicts_is_warned_about(
    broker: strego.RedisBroker, make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker on a Redis that may evict keys says so at start."""
    await broker.redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with caplog.at_level(logging.WARNING, logger="strego"):
            await make_server({})
        assert any("maxmemory-policy" in r.getMessage() for r in caplog.records)
    finally:
        await broker.redis.config_set("maxmemory-policy", "noeviction")


async def test_a_worker_redis_refuses_fails_at_start_instead_of_hanging(
    redis_url: str, prefix: str, broker: strego.RedisBroker
) -> None:
    """A user without the commands strego needs: start() raises a clear error at once."""
    await broker.redis.execute_command(
        "ACL", "SETUSER", "narrow", "on", ">narrow-password-1", "~*", "&*", "-@all", "+@connection"
    )
    try:
        url = redis_url.replace("redis://", "redis://narrow:narrow-password-1@")
        narrow = strego.RedisBroker(url, prefix=prefix, group="tests")
        server = strego.Server(narrow)
        with pytest.raises(strego.ConfigurationError, match="ACL"):
            await asyncio.wait_for(server.start(), 10)
        await narrow.aclose()
    finally:
        await broker.redis.execute_command("ACL", "DELUSER", "narrow")


async def test_unknown_task_type_waits_for_a_worker_that_knows_it(
    client: strego.Client, make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """A rolling deploy: a type this worker has no handler for is retried with backoff,
    not counted as an attempt nor a failure, until a worker with its handler runs it;
    after unknown_type_grace it is dead-lettered as unknown_type."""
    await make_server({}, unknown_type_grace=30)
    info = await client.enqueue(strego.Task("new:type", max_retry=0))
    await wait_until(lambda: state_is(inspector, info.id, "retry"))
    record = await inspector.get_task(info.id)
    assert record is not None and record.retry_count == 0
    assert "no handler for task type 'new:type'" in (record.last_error or "")
    assert (await inspector.queue_info("default")).failed == 0
    ran: list[str] = []

    async def handler(task: strego.Task) -> None:
        ran.append(task.id)

    await make_server({"new:type": handler})
    await wait_until(lambda: state_is(inspector, info.id, "completed"), timeout=15)
    assert ran == [info.id]

    late = await client.enqueue(strego.Task("other:type"))
    await make_server({}, unknown_type_grace=0.001)  # this worker gives up at once
    await wait_until(lambda: state_is(inspector, late.id, "dead"), timeout=15)
    record = await inspector.get_task(late.id)
    assert record is not None and record.dead_reason == "unknown_type"
