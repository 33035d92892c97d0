"""What observability costs (issue #17). Not part of the test suite.

    .venv/bin/python -m benchmarks.observability [--tasks 20000] [--rounds 3]
        [--queues 1000] [--baseline-src /path/to/other/src]

On a private redis-server, three figures:

1. **Worker throughput** with no-op tasks, one worker process per run (concurrency 10,
   ``--tasks`` pre-filled): plain; ``metrics_port`` on and scraped every second (a
   Prometheus default is 15 s); ``TracingMiddleware`` with only the OpenTelemetry API
   (no SDK: what a library user without tracing pays); and with the SDK recording
   every span into a batch processor that discards them; with ``--baseline-src``, plain
   on that checkout too (main without the stats collector). Runs are interleaved over
   ``--rounds`` and the median taken (the machine is shared and noisy).
2. **Middleware on the hot path**: ``Runner.execute`` of a no-op async handler, ns per
   call, with no middleware and with one pass-through. With
   ``--baseline-src`` the same is measured against another checkout's ``src`` (main
   before middleware existed) in a subprocess: "no middleware" must cost the same.
3. **The UI's /metrics with ``--queues`` queues** (each with a few pending, scheduled
   and dead tasks, half served by a worker group): wall time of ``Inspector.gauges()``
   and of a whole ``GET /metrics``, and Redis' own time (INFO commandstats), each on a
   fresh prefix.
"""

from __future__ import annotations

import argparse
import asyncio
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

CONFIGS = ("plain", "metrics", "tracing-api", "tracing-sdk")
SRC = Path(__file__).resolve().parents[1] / "src"


# -- 1. worker throughput ---------------------------------------------------------------


async def _fill(url: str, prefix: str, tasks: int) -> None:
    async with strego.RedisBroker(url, prefix=prefix, group="bench") as broker:
        client = strego.Client(broker)
        for start in range(0, tasks, 2000):
            n = min(2000, tasks - start)
            await client.enqueue_many([strego.Task("noop") for _ in range(n)])


def _middleware(config: str) -> list[strego.Middleware]:
    if not config.startswith("tracing"):
        return []
    from strego.otel import TracingMiddleware

    if config == "tracing-api":
        return [TracingMiddleware()]
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return [TracingMiddleware(tracer_provider=provider)]


async def _scrape_forever(port: int) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        while True:
            await asyncio.sleep(1.0)
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def run_worker(url: str, prefix: str, tasks: int, config: str) -> tuple[float, float]:
    """In this (child) process: pre-fill, then time the worker draining the queue:
    (tasks per second of wall time, worker CPU µs per task)."""
    await _fill(url, prefix, tasks)
    done = 0
    finished = asyncio.Event()
    first: list[float] = []
    cpu: list[float] = []
    broker = strego.RedisBroker(url, prefix=prefix, group="bench")
    options: dict[str, Any] = {}  # only what is asked: a baseline checkout lacks them
    if config.startswith("tracing"):
        options["middleware"] = _middleware(config)
    if config == "metrics":
        options["metrics_port"] = 0
    server = strego.Server(broker, concurrency=10, **options)

    async def noop(task: strego.Task) -> None:
        nonlocal done
        if not first:
            first.append(time.perf_counter())
            cpu.append(time.process_time())
        done += 1
        if done == tasks:
            finished.set()

    server.handle("noop", noop)
    async with server:
        scraper = None
        if config == "metrics":
            scraper = asyncio.create_task(_scrape_forever(server.probe_ports["/metrics"]))
        await asyncio.wait_for(finished.wait(), 600)
        elapsed = time.perf_counter() - first[0]
        used = time.process_time() - cpu[0]
        if scraper is not None:
            scraper.cancel()
    await broker.aclose()
    return tasks / elapsed, used / tasks * 1e6


def throughput(
    url: str, tasks: int, rounds: int, baseline: Path | None
) -> dict[str, list[tuple[float, float]]]:
    configs = [*CONFIGS, *(["baseline"] if baseline else [])]
    rates: dict[str, list[tuple[float, float]]] = {c: [] for c in configs}
    for round_no in range(rounds):
        for config in configs:
            child = json.dumps([url, f"b{round_no}{config}", tasks, config])
            src = baseline if config == "baseline" else SRC
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.observability", "--child-worker", child],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": f"{src}:{SRC.parent}"},
            ).stdout
            rate, cpu_us = json.loads(out.strip().splitlines()[-1])
            rates[config].append((rate, cpu_us))
            print(
                f"  round {round_no + 1} {config:12} {rate:9,.0f} tasks/s {cpu_us:6.1f} µs CPU/task"
            )
    return rates


# -- 2. middleware on the hot path -----------------------------------------------------------


MICRO = r"""
import asyncio, json, sys, time
from concurrent.futures import ThreadPoolExecutor
import strego
from strego.envelope import TaskMessage
from strego.handlers import HandlerRegistry
from strego.retry import RetryPolicy
from strego.serializers import SerializerRegistry
from strego.worker.leases import LeaseTable
from strego.worker.runner import Runner
from strego.broker.base import Delivery

async def noop(task: strego.Task) -> None:
    return None

def build(hooks):
    registry = HandlerRegistry()
    registry.register("noop", noop, None)
    args = (registry, SerializerRegistry(), RetryPolicy.build(1, 60, "bounded"), 10,
            ThreadPoolExecutor(1), 3600.0)
    return Runner(*args, hooks) if hooks else Runner(*args)

async def measure(hooks, n=50000):
    runner = build(hooks)
    message = TaskMessage(id="1", type="noop", queue="default", payload=b"null")
    handler = runner._handlers.get("noop")
    lease = LeaseTable(time.monotonic).add(Delivery("default", 0, "1-0", {}, 1), 0.0)
    for _ in range(2000):
        await runner.execute(message, handler, None, lease)
    started = time.perf_counter_ns()
    for _ in range(n):
        await runner.execute(message, handler, None, lease)
    return (time.perf_counter_ns() - started) / n

async def main():
    out = {"none": await measure(())}
    if sys.argv[1] == "with":
        from strego.middleware import process_hooks
        class Pass(strego.Middleware):
            async def process(self, task, call_next):
                return await call_next(task)
        out["one pass-through"] = await measure(process_hooks([Pass()]))
    print(json.dumps(out))

asyncio.run(main())
"""


def micro(src: Path, with_middleware: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", MICRO, "with" if with_middleware else "without"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# -- 3. the UI's /metrics ------------------------------------------------------------------


async def ui_metrics(url: str, queues: int) -> dict[str, float]:
    from strego.ui import create_app

    prefix = f"ui{time.monotonic_ns()}"  # a fresh set of queues per call
    async with strego.RedisBroker(url, prefix=prefix, group="bench") as broker:
        client = strego.Client(broker)
        for start in range(0, queues, 100):
            batch = []
            for q in range(start, min(queues, start + 100)):
                queue = f"queue-{q:04}"
                batch += [strego.Task("t", queue=queue) for _ in range(3)]
                batch += [strego.Task("t", queue=queue, process_in=3600) for _ in range(2)]
            await client.enqueue_many(batch)
        served = [f"queue-{q:04}" for q in range(0, queues, 2)]
        await broker.prepare(served)  # records their group, as a worker's start does
        raw = aioredis.from_url(url)
        inspector = strego.Inspector(broker)
        await inspector.gauges()  # scripts loaded
        await raw.config_resetstat()
        walls = []
        for _ in range(10):
            started = time.perf_counter()
            gauges = await inspector.gauges()
            walls.append(time.perf_counter() - started)
        assert len(gauges.queues) == queues
        stats = await raw.info("commandstats")
        redis_us = sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_")) / 10
        import httpx

        app = create_app(broker)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as http:
            started = time.perf_counter()
            response = await http.get("/metrics")
            whole = time.perf_counter() - started
        legacy_started = time.perf_counter()
        await inspector.queues()
        legacy = time.perf_counter() - legacy_started
        await raw.aclose()
    return {
        "gauges_wall_ms": statistics.median(walls) * 1000,
        "redis_ms_per_read": redis_us / 1000,
        "http_metrics_ms": whole * 1000,
        "response_kb": len(response.content) / 1024,
        "queues_wall_ms (Inspector.queues, for comparison)": legacy * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--child-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_worker:
        url, prefix, tasks, config = json.loads(args.child_worker)
        print(json.dumps(asyncio.run(run_worker(url, prefix, tasks, config))))
        return
    with EmbeddedRedis() as server:
        print(f"1. worker throughput, {args.tasks:,} no-op tasks, concurrency 10:")
        rates = throughput(server.url, args.tasks, args.rounds, args.baseline_src)
        plain = statistics.median(r for r, _ in rates["plain"])
        plain_cpu = statistics.median(c for _, c in rates["plain"])
        print("   medians (throughput is noisy on a shared machine; CPU per task is not):")
        for config in rates:
            rate = statistics.median(r for r, _ in rates[config])
            cpu_us = statistics.median(c for _, c in rates[config])
            print(
                f"   {config:12} {rate:9,.0f} tasks/s ({rate / plain - 1:+.1%})  "
                f"{cpu_us:6.1f} µs CPU/task ({cpu_us / plain_cpu - 1:+.1%})"
            )
        print("2. Runner.execute, no-op async handler (ns per call, median of 5 runs):")
        for name, ns in micro(SRC, True).items():
            print(f"   this branch, middleware {name:17} {ns:8.0f} ns")
        if args.baseline_src:
            for name, ns in micro(args.baseline_src, False).items():
                print(f"   baseline ({args.baseline_src}), {name:9} {ns:8.0f} ns")
        print(f"3. the UI's /metrics, {args.queues} queues:")
        for name, value in asyncio.run(ui_metrics(server.url, args.queues)).items():
            print(f"   {name:50} {value:8.1f}")


if __name__ == "__main__":
    main()
