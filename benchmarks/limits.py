"""What global limits cost, and how exactly they hold a rate (issue #16). Not part of
the test suite.

    .venv/bin/python -m benchmarks.limits [--tasks 20000] [--rounds 3] [--configs ...]

On a private redis-server:

1. **Checking cost**: a worker process (concurrency 10) drains ``--tasks`` pre-filled
   no-op tasks with no limit, then with limits that are never reached: a RateLimit of
   100,000/s on the task type, a ConcurrencyLimit of 1,000 on it, and a queue-wide
   RateLimit (checked inside the fetch script). Interleaved over ``--rounds``, medians;
   the raw redis-py ceiling (XADD, XREADGROUP COUNT 100, pipelined XACK) of the same run
   is the reference. Each round runs the configurations in a rotated order, so none
   always runs first (the position in a round could skew a result by a few per cent).
   Also the worker process' CPU time per task (medians): on a shared machine its
   throughput swings by half between runs (when it and redis-server share a core), its
   CPU time per task moves less, so that is the steadier comparison. The machine also
   has slower and faster spells of minutes: the ratios in brackets are the medians of
   per-round ratios (each round's runs are close in time), the steadiest figures.
2. **Achieved vs configured rate**: RateLimit 100/s and 1,000/s (burst 1) on a backlog
   drained by two worker processes at concurrency 50; the rate is (starts - 1) /
   (last start - first start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

import strego
from strego.embedded import EmbeddedRedis

CONFIGS = ("none", "rate", "rate-burst", "concurrency", "queue-rate", "queue-rate-burst")
ROOT = Path(__file__).resolve().parents[1]


async def _fill(url: str, prefix: str, tasks: int) -> None:
    async with strego.RedisBroker(url, prefix=prefix, group="bench") as broker:
        client = strego.Client(broker)
        for start in range(0, tasks, 2000):
            n = min(2000, tasks - start)
            await client.enqueue_many([strego.Task("noop") for _ in range(n)])


def _server(broker: strego.RedisBroker, config: str, concurrency: int, rate: int) -> Any:
    options: dict[str, Any] = {"concurrency": concurrency}
    limits: list[Any] = []
    # burst 1 spaces starts 10 µs apart: a batch fetched at once exceeds that; a burst
    # as large as the fetch batch is a limit that is truly never reached.
    if config.startswith("rate"):
        burst = 20 if config.endswith("burst") else None
        limits = [strego.RateLimit("bench", 100_000, burst=burst)]
    elif config == "concurrency":
        limits = [strego.ConcurrencyLimit("bench", 1_000)]
    elif config.startswith("queue-rate"):
        burst = 20 if config.endswith("burst") else None
        options["queue_limits"] = {"default": strego.RateLimit("bench-q", 100_000, burst=burst)}
    elif config == "achieved":
        limits = [strego.RateLimit("bench-rate", rate)]
    return strego.Server(broker, **options), limits


async def run_worker(
    url: str, prefix: str, tasks: int, config: str, concurrency: int, rate: int, fill: bool
) -> tuple[float, list[float], float]:
    """In this (child) process: drain ``tasks`` (pre-filled here when ``fill``); return
    (tasks per second of wall time, handler start times, CPU µs per task)."""
    if fill:
        await _fill(url, prefix, tasks)
    cpu = time.process_time()
    starts: list[float] = []
    finished = asyncio.Event()
    broker = strego.RedisBroker(url, prefix=prefix, group="bench")
    server, limits = _server(broker, config, concurrency, rate)

    async def noop(task: strego.Task) -> None:
        starts.append(time.time())
        if len(starts) == tasks:
            finished.set()

    server.handle("noop", noop, limits=limits)
    inspector = strego.Inspector(broker)
    async with server:
        # One process drains all (checking cost), or two share them (achieved rate):
        # then each stops once the queue is empty and nothing runs.
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), 0.2)
            if not fill and (await inspector.queue_info("default")).size == 0:
                break
    cpu_us = (time.process_time() - cpu) * 1e6 / max(1, len(starts))
    await broker.aclose()
    elapsed = max(starts) - min(starts) if len(starts) > 1 else 1.0
    return len(starts) / elapsed, starts, cpu_us


def _child(args: list[Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.limits", "--child-worker", json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
    )


def _result(proc: subprocess.Popen[str]) -> tuple[float, list[float], float]:
    out, _ = proc.communicate(timeout=900)
    rate, starts, cpu_us = json.loads(out.strip().splitlines()[-1])
    return rate, starts, cpu_us


async def ceiling(url: str, tasks: int) -> float:
    """Raw redis-py: XADD the tasks, then XREADGROUP COUNT 100 + pipelined XACK."""
    redis = aioredis.from_url(url)
    stream = f"ceiling:{time.time_ns()}"
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    pipe = redis.pipeline(transaction=False)
    for _ in range(tasks):
        pipe.xadd(stream, {"d": b"{}"})
    await pipe.execute()
    started, done = time.perf_counter(), 0
    while done < tasks:
        reply = await redis.xreadgroup("g", "c", {stream: ">"}, count=100)
        ids = [entry_id for _, entries in reply for entry_id, _ in entries]
        pipe = redis.pipeline(transaction=False)
        pipe.xack(stream, "g", *ids)
        pipe.xdel(stream, *ids)
        await pipe.execute()
        done += len(ids)
    rate = tasks / (time.perf_counter() - started)
    await redis.delete(stream)
    await redis.aclose()
    return rate


Found = dict[str, list[float]]


def checking_cost(url: str, tasks: int, rounds: int, configs: list[str]) -> tuple[Found, Found]:
    """Each configuration's throughput and CPU µs per task, round by round."""
    rates: dict[str, list[float]] = {c: [] for c in configs}
    cpus: dict[str, list[float]] = {c: [] for c in configs}
    for round_no in range(rounds):
        shift = round_no % len(configs)
        for config in configs[shift:] + configs[:shift]:
            proc = _child([url, f"c{round_no}{config}", tasks, config, 10, 0, True])
            rate, _, cpu_us = _result(proc)
            rates[config].append(rate)
            cpus[config].append(cpu_us)
            print(f"  round {round_no + 1} {config:12} {rate:9,.0f} tasks/s {cpu_us:6.1f} µs CPU")
    return rates, cpus


def paired(found: Found, config: str) -> float:
    """The median of the per-round ratios to no limit (runs of one round are
    minutes apart at most: this cancels the machine's slower and faster spells)."""
    return statistics.median(a / b for a, b in zip(found[config], found["none"], strict=True))


def achieved(url: str, rate: int, tasks: int) -> float:
    prefix = f"a{rate}"
    asyncio.run(_fill(url, prefix, tasks))
    procs = [_child([url, prefix, tasks, "achieved", 50, rate, False]) for _ in range(2)]
    starts = sorted(t for proc in procs for t in _result(proc)[1])
    return (len(starts) - 1) / (starts[-1] - starts[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="of " + ", ".join(CONFIGS))
    parser.add_argument("--child-worker")
    args = parser.parse_args()
    if args.child_worker:
        url, prefix, tasks, config, concurrency, rate, fill = json.loads(args.child_worker)
        found = asyncio.run(run_worker(url, prefix, tasks, config, concurrency, rate, fill))
        print(json.dumps(found))
        return
    with EmbeddedRedis() as server:
        raw = asyncio.run(ceiling(server.url, args.tasks))
        print(f"raw redis-py ceiling: {raw:,.0f} tasks/s")
        print(f"1. checking cost, {args.tasks} no-op tasks, concurrency 10 (medians):")
        configs = args.configs.split(",")
        if "none" not in configs or not set(configs) <= set(CONFIGS):
            parser.error(f"--configs: some of {', '.join(CONFIGS)}, with none")
        rates, cpus = checking_cost(server.url, args.tasks, args.rounds, configs)
        print("  medians; in brackets the median of per-round ratios to no limit:")
        for config in configs:
            rate, cpu = statistics.median(rates[config]), statistics.median(cpus[config])
            print(
                f"  {config:16} {rate:9,.0f} tasks/s ({paired(rates, config):6.1%} of no limit)"
                f"  {rate / raw:6.1%} of the ceiling  {cpu:5.1f} µs CPU/task"
                f" ({paired(cpus, config) - 1:+5.1%})"
            )
        print("2. achieved vs configured rate (2 processes x concurrency 50, burst 1):")
        for rate, tasks in ((100, 1500), (1000, 10_000)):
            got = achieved(server.url, rate, tasks)
            print(f"  {rate:5}/s configured: {got:8.1f}/s achieved ({got / rate:6.1%})")


if __name__ == "__main__":
    main()
