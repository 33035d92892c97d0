"""Periodic tasks (issue #14): tick lateness with 1 000 schedules on one queue, and Redis
memory per schedule after 10 000 fires.

    PYTHONPATH=src .venv/bin/python -m benchmarks.periodic [--schedules 1000] [--bursts 3]

Lateness: ``--schedules`` schedules with ``every=10`` on one queue, so all of them are
due at the same instant (every tick falls on a multiple of 10 s since the epoch: the
worst case, a burst). Two workers in this process declare them all and race to fire
each tick (the compare-and-set decides); lateness = handler start - tick. The ceiling,
measured in the same run on the same Redis: raw redis-py pipelining ``--schedules``
XADDs at the tick and one consumer reading them with XREADGROUP (what it costs just to
move that many entries through one stream) — the ratio is strego over it.

Memory: one schedule fired 10 000 times by the real fire script (the ticks of the last
10 000 s, in order, 500 per pipeline, each a compare-and-set from the previous tick),
every run executed by a worker; then Redis ``MEMORY USAGE`` of the schedule's own keys
(definition, next fire time, seen, last run, its capped log) and the growth of
``used_memory``, with the processed markers of the runs' explicit ids (kept for
``processed_ttl``) counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis

import strego
from benchmarks import stats
from benchmarks.server import PrivateRedis
from strego.periodic.base import FireRequest
from strego.periodic.definition import Definition, task_id

EVERY_S = 10


async def lateness(url: str, schedules: int, bursts: int) -> dict[str, Any]:
    samples: list[float] = []
    done = asyncio.Event()
    periodic = [strego.Periodic("tick", every=EVERY_S, name=f"s{n}") for n in range(schedules)]
    brokers = [
        strego.RedisBroker(url, prefix="lat", group="bench", consumer=f"w{n}") for n in range(2)
    ]
    servers = []
    for broker in brokers:
        server = strego.Server(broker, periodic=periodic, concurrency=200)

        @server.handle("tick")
        async def tick(task: strego.Task) -> None:
            samples.append(time.time() - int(task.id.rsplit(":", 1)[1]) / 1000)
            if len(samples) >= schedules * (bursts + 1):
                done.set()

        servers.append(server)
    for server in servers:
        await server.start()
    await asyncio.wait_for(done.wait(), EVERY_S * (bursts + 2) + 30)
    for server in servers:
        await server.stop()
    for broker in brokers:
        await broker.aclose()
    measured = samples[schedules:]  # the first burst may find the workers starting
    return {**stats.percentiles(measured), "n": len(measured)}


async def ceiling(url: str, count: int, rounds: int) -> dict[str, Any]:
    """Raw redis-py: XADD ``count`` entries in one pipeline, one consumer reads them."""
    r = aioredis.Redis.from_url(url)
    await r.xgroup_create("ceiling", "g", id="0", mkstream=True)
    samples: list[float] = []
    for _ in range(rounds):
        start = time.time()
        pipe = r.pipeline(transaction=False)
        for n in range(count):
            pipe.xadd("ceiling", {"d": f"{start}:{n}"})
        await pipe.execute()
        got = 0
        while got < count:
            reply = await r.xreadgroup("g", "c", {"ceiling": ">"}, count=100, block=1000)
            for _, entries in reply:
                now = time.time()
                samples.extend(now - start for _ in entries)
                got += len(entries)
                await r.xack("ceiling", "g", *(eid for eid, _ in entries))
    await r.aclose()
    return {**stats.percentiles(samples), "n": len(samples)}


async def memory(url: str, fires: int, private: PrivateRedis) -> dict[str, Any]:
    broker = strego.RedisBroker(url, prefix="mem", group="bench")
    keys = broker.keys("default")
    schedule = strego.Periodic("beat", every=1, name="beat")
    server = strego.Server(broker, concurrency=50)
    ran = 0
    all_ran = asyncio.Event()

    @server.handle("beat")
    async def beat(task: strego.Task) -> None:
        nonlocal ran
        ran += 1
        if ran >= fires:
            all_ran.set()

    await server.start()
    await broker.periodics.declare("default", {"beat": schedule.definition()})
    baseline = private.used_memory()
    definition = Definition.parse("beat", "default", schedule.definition())
    seconds, _ = await broker.redis.time()
    first = (int(seconds) - fires - 5) * 1000
    await broker.redis.zadd(keys.periodic_next, {"beat": first})
    for start in range(0, fires, 500):
        requests = [
            FireRequest(
                name="beat",
                definition=definition.text,
                expected_next_ms=first + n * 1000,
                next_ms=first + (n + 1) * 1000,
                overlap_skip=False,
                ticks=[
                    (first + n * 1000, definition.message(task_id("beat", first + n * 1000), 0))
                ],
            )
            for n in range(start, min(start + 500, fires))
        ]
        # One pipeline, applied in order: each compare-and-set expects the previous one.
        for result in await broker.periodics.fire("default", requests):
            assert result.status == "fired", result
    await asyncio.wait_for(all_ran.wait(), 300)
    await server.stop()  # graceful: the last outcomes land
    own = [keys.periodic, keys.periodic_next, keys.periodic_seen, keys.periodic_last,
           keys.periodic_log("beat")]  # fmt: skip
    schedule_bytes = 0
    for key in own:
        schedule_bytes += int(await broker.redis.memory_usage(key) or 0)
    markers = 0
    async for _ in broker.redis.scan_iter(match=f"{keys.tag}:processed:periodic:*", count=1000):
        markers += 1
    sample = await broker.redis.memory_usage(keys.processed(task_id("beat", first)))
    grown = private.used_memory() - baseline
    log_len = await broker.redis.llen(keys.periodic_log("beat"))
    await broker.aclose()
    return {
        "fires": fires,
        "ran": ran,
        "schedule_keys_bytes": schedule_bytes,
        "log_entries": log_len,
        "processed_markers": markers,
        "marker_bytes": int(sample or 0),
        "used_memory_growth_bytes": grown,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    private = PrivateRedis().start()
    try:
        url = private.url
        result: dict[str, Any] = {"redis": private.version()}
        result["ceiling"] = await ceiling(url, args.schedules, args.bursts)
        result["lateness"] = await lateness(url, args.schedules, args.bursts)
        private.flush()
        result["memory"] = await memory(url, args.fires, private)
    finally:
        private.stop()
    lat, ceil = result["lateness"], result["ceiling"]
    result["ratio_p50"] = lat["p50_ms"] / ceil["p50_ms"] if ceil.get("p50_ms") else None
    result["ratio_p99"] = lat["p99_ms"] / ceil["p99_ms"] if ceil.get("p99_ms") else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.periodic")
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--fires", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    lat, ceil, mem = result["lateness"], result["ceiling"], result["memory"]
    print(
        f"\ntick lateness, {args.schedules} schedules due at once on one queue (2 workers): "
        f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms "
        f"(raw redis-py ceiling p50 {ceil['p50_ms']:.0f} ms, p99 {ceil['p99_ms']:.0f} ms; "
        f"x{result['ratio_p50']:.1f} / x{result['ratio_p99']:.1f})"
    )
    print(
        f"memory after {mem['fires']} fires: the schedule's own keys "
        f"{mem['schedule_keys_bytes']} B "
        f"(log capped at {mem['log_entries']} runs); processed markers "
        f"{mem['processed_markers']} x ~{mem['marker_bytes']} B until processed_ttl; "
        f"used_memory grew {mem['used_memory_growth_bytes'] / 1024:.0f} KiB in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
