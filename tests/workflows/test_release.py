"""Exactly-once release, deterministically: a drainer that died holding the outbox
entry (taken over by reclaim), and an entry applied twice (no second release)."""

from __future__ import annotations

import asyncio

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401


async def test_entry_held_by_dead_drainer_is_reclaimed_and_applied_once(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """The worker that took the outbox entry died before applying it: another worker
    reclaims it after claim_stale_after and releases the dependent, once."""
    runs: list[str] = []

    async def step(task: strego.Task) -> int:
        runs.append(task.id)
        return len(runs)

    outbox = broker.keys("default").flow_outbox
    await broker.redis.xgroup_create(outbox, "tests", id="0", mkstream=True)
    info = await client.enqueue(strego.chain(strego.Task("step"), strego.Task("step")))
    # The commit's "open" record: applied by the producer already; take it out of the way.
    opened = await broker.redis.xreadgroup("tests", "ghost", {outbox: ">"}, count=1)
    assert opened[0][1][0][1][b"s"] == b"o"
    await broker.redis.xack(outbox, "tests", opened[0][1][0][0])
    # A consumer blocked first gets the next entry (the first step's completion): it
    # then "dies" holding it.
    ghost = asyncio.create_task(
        broker.redis.xreadgroup("tests", "ghost", {outbox: ">"}, count=1, block=20_000)
    )

    async def ghost_blocked() -> bool:
        return int((await broker.redis.info("clients"))["blocked_clients"]) > 0

    await wait_until(ghost_blocked)
    await make_server(
        {"step": step},
        broker_options={"claim_stale_after": 0.5, "claim_check_interval": 0.2},
    )
    taken = await asyncio.wait_for(ghost, 20)
    assert taken and taken[0][1][0][1][b"t"] == info.task_ids[0].encode()
    assert await client.result(info.id, timeout=30) == 2
    assert runs == info.task_ids
    flow_key = broker.keys("default").flow(info.id)
    assert await broker.redis.hget(flow_key, "released") == b"2"


async def test_outbox_entry_applied_twice_releases_once(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Replaying a completion record (a worker killed after applying it, before its
    XACK) changes nothing: no second release, no second run."""
    runs: list[str] = []

    async def step(task: strego.Task) -> str:
        runs.append(task.id)
        return task.id

    await make_server({"step": step})
    info = await client.enqueue(strego.chain(strego.Task("step"), strego.Task("step")))
    assert await client.result(info.id, timeout=30) == info.task_ids[1]
    outbox = broker.keys("default").flow_outbox
    for task_id in info.task_ids:
        await broker.redis.xadd(outbox, {"w": info.id, "t": task_id, "s": "c"})

    async def drained() -> bool:
        return int(await broker.redis.xlen(outbox)) == 0

    await wait_until(drained, timeout=10)
    flow_key = broker.keys("default").flow(info.id)
    assert await broker.redis.hget(flow_key, "released") == b"2"
    assert runs == info.task_ids


async def test_outbox_consumers_of_gone_workers_are_pruned(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Consumers a gone worker left in an outbox group are removed when they hold
    nothing; one holding an entry stays (its entry must still be reclaimed)."""
    server = await make_server({"step": lambda task: None})
    info = await client.enqueue(strego.chain(strego.Task("step"), strego.Task("step")))
    await client.result(info.id, timeout=30)
    await server.stop()  # no live drainer takes the entry below
    outbox = broker.keys("default").flow_outbox
    await broker.redis.xgroup_createconsumer(outbox, "tests", "gone-empty")
    await broker.redis.xadd(outbox, {"w": "wf_none", "t": "x", "s": "c"})
    await broker.redis.xgroup_createconsumer(outbox, "tests", "gone-holding")
    drainer = broker.workflow_drainer(["default"], 1.0)
    await broker.redis.xreadgroup("tests", "gone-holding", {outbox: ">"}, count=1)
    assert await drainer.prune(outbox, "tests", idle_ms=0) >= 1
    names = {c["name"] for c in await broker.redis.xinfo_consumers(outbox, "tests")}
    assert "gone-holding" in {n.decode() if isinstance(n, bytes) else n for n in names}
    assert "gone-empty" not in {n.decode() if isinstance(n, bytes) else n for n in names}
