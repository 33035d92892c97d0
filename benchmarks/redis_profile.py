"""Where one task's Redis CPU goes: ``python -m benchmarks.redis_profile``.

Starts a private redis-server (strego.embedded, no persistence), enqueues N no-op tasks one by one,
then lets one in-process worker (concurrency 10) run them, and prints Redis'
``INFO commandstats`` for each phase per task: every command a script runs is listed
with its own time, and the script call's total includes them, so "script overhead"
(the Lua VM, argument tables, each ``redis.call`` crossing) is the call's time minus
its commands'. The raw redis-py ceiling (XADD, XREADGROUP COUNT 100, XACK) is
measured the same way in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import redis.asyncio as redis_asyncio

import strego
from strego.embedded import EmbeddedRedis


async def _stats(client: Any) -> dict[str, tuple[int, float]]:
    info = await client.info("commandstats")
    return {
        k.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"])) for k, v in info.items()
    }


def _print(title: str, stats: dict[str, tuple[int, float]], n: int) -> float:
    total = 0.0
    print(f"\n{title} (per task: calls, us)")
    for name, (calls, usec) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        if name.startswith("config") or name == "info":
            continue
        print(f"  {name:<22} {calls / n:7.2f} {usec / n:8.2f}")
        if name in ("evalsha", "eval") or not any(s in stats for s in ("evalsha", "eval")):
            total += usec / n
    return total


async def _strego(url: str, client: Any, n: int) -> tuple[float, float]:
    broker = strego.RedisBroker(url, prefix="p")
    done = asyncio.Event()
    count = 0

    async with strego.Client(broker) as producer:
        for _ in range(50):
            await producer.enqueue(strego.Task("warm"))
        await client.config_resetstat()
        for _ in range(n):
            await producer.enqueue(strego.Task("noop"))
        enqueue = _print("strego enqueue (one by one)", await _stats(client), n)
    server = strego.Server(strego.RedisBroker(url, prefix="p"), concurrency=10)

    async def noop(task: strego.Task) -> None:
        nonlocal count
        if task.type == "noop":
            count += 1
            if count == n:
                done.set()

    server.handle("noop", noop)
    server.handle("warm", noop)
    await client.config_resetstat()
    await server.start()
    await asyncio.wait_for(done.wait(), 120)
    await asyncio.sleep(0.5)  # the last outcomes land
    work = _print("strego fetch + ack (c10, backlog)", await _stats(client), n)
    await server.stop()
    await broker.aclose()
    return enqueue, work


async def _ceiling(client: Any, n: int) -> tuple[float, float]:
    await client.config_resetstat()
    for _ in range(n):
        await client.xadd("raw", {"d": b"x" * 150})
    enqueue = _print("ceiling XADD (one by one)", await _stats(client), n)
    await client.xgroup_create("raw", "g", id="0")
    await client.config_resetstat()
    left = n
    while left:
        reply = await client.xreadgroup("g", "c", {"raw": ">"}, count=100)
        ids = [eid for _, entries in reply for eid, _ in entries]
        await client.xack("raw", "g", *ids)
        left -= len(ids)
    work = _print("ceiling XREADGROUP COUNT 100 + XACK", await _stats(client), n)
    return enqueue, work


async def main(tasks: int, url: str) -> None:
    client = redis_asyncio.Redis.from_url(url)
    s_enq, s_work = await _strego(url, client, tasks)
    await client.flushall()
    c_enq, c_work = await _ceiling(client, tasks)
    ratio = (s_enq + s_work) / (c_enq + c_work)
    print(
        f"\nRedis command time per task (script calls whole; us): strego enqueue "
        f"{s_enq:.2f} + fetch/ack {s_work:.2f} = {s_enq + s_work:.2f}; ceiling {c_enq:.2f}"
        f" + {c_work:.2f} = {c_enq + c_work:.2f}; ratio {ratio:.1f}x"
    )
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    args = parser.parse_args()
    with EmbeddedRedis() as server:  # a private server, no persistence
        asyncio.run(main(args.tasks, server.url))
