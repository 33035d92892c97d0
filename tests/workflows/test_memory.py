"""Bounded memory: once flows finished and their TTL passed, Redis holds what it held
before (no graph, no outbox entry, no arrived result left behind)."""

from __future__ import annotations

import asyncio

import strego
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory, make_server  # noqa: F401


async def footprint(broker: strego.RedisBroker, prefix: str) -> dict[str, int]:
    """Every key of the test (bar per-hour throughput) with its size."""
    out: dict[str, int] = {}
    async for raw in broker.redis.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode()
        if ":tp:" in key:
            continue
        kind = (await broker.redis.type(key)).decode()
        size = {
            "hash": broker.redis.hlen,
            "stream": broker.redis.xlen,
            "zset": broker.redis.zcard,
            "list": broker.redis.llen,
            "set": broker.redis.scard,
        }.get(kind)
        out[key] = int(await size(key)) if size else 1
    return out


async def no_flow_keys(broker: strego.RedisBroker, prefix: str) -> bool:
    keys = await footprint(broker, prefix)
    return not any(":flow:wf_" in k or ":result:" in k for k in keys)


async def test_memory_back_to_baseline_after_ttl(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker, prefix: str
) -> None:
    """20 chords of 20 over two queues leave nothing once their results expired."""

    async def member(payload: int) -> int:
        return payload

    async def total(task: strego.Task) -> int:
        return sum(task.upstream_results)

    await make_server(
        {"member": member, "total": total},
        queues=["default", "other"],
        keep_completed=0,
        result_ttl=2,
        broker_options={"claim_stale_after": 0.3, "claim_check_interval": 0.2},
    )

    def flow(n: int) -> strego.workflows.Chord:
        members = [strego.Task("member", i, queue=("default", "other")[i % 2]) for i in range(n)]
        return strego.chord(members, strego.Task("total", queue="other"))

    warm = await client.enqueue(flow(3))
    assert await client.result(warm.id, timeout=20) == 3
    await wait_until(lambda: no_flow_keys(broker, prefix), timeout=20)
    baseline = await footprint(broker, prefix)
    waits = []
    for _ in range(20):  # await each at once: its result is kept 2 s only
        info = await client.enqueue(flow(20))
        waits.append(asyncio.create_task(client.result(info.id, timeout=60)))
    results = await asyncio.gather(*waits)
    assert results == [190] * 20
    await wait_until(lambda: no_flow_keys(broker, prefix), timeout=20)
    assert await footprint(broker, prefix) == baseline
