"""Processed tasks/s on one Redis and on a Redis Cluster of 1, 2 and 3 masters.

Run: ``.venv/bin/python -m benchmarks.cluster_scaling [--tasks 30000] [--workers 2] [--repeat 3]``

Each configuration gets one queue per master, named so its hash tag lands on that
master (so the load spreads evenly). The queues are pre-filled with no-op tasks,
then ``--workers`` worker processes (each serving every queue) drain them;
rate = tasks / (last handler end - first handler start), so start-up is excluded.
For each master the Redis CPU time spent (INFO used_cpu_user + used_cpu_sys) is
reported per 1000 tasks: that per-node figure is what scaling is argued from, since
on a small machine the workers and every redis-server share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import multiprocessing.connection
import platform
import statistics
import time
from typing import Any

import redis
from tests.support.servers import redis_binary
from tests.support.topology import ClusterTopology

import strego
from strego.embedded import EmbeddedRedis

GROUP = "bench"
CHUNK = 1000


@dataclasses.dataclass
class Row:
    setup: str
    masters: int
    queues: list[str]
    enqueue_per_s: float = 0.0
    processed_per_s: float = 0.0
    redis_cpu_ms_per_1k: list[float] = dataclasses.field(default_factory=list)


# -- worker processes ----------------------------------------------------------------


def _worker(
    url: str, prefix: str, queues: list[str], concurrency: int, stop: Any, out: Any
) -> None:
    """A worker process: run a Server until told to stop, then report its timings."""
    asyncio.run(_work(url, prefix, queues, concurrency, stop, out))


async def _work(
    url: str, prefix: str, queues: list[str], concurrency: int, stop: Any, out: Any
) -> None:
    broker = strego.RedisBroker(url, group=GROUP, prefix=prefix)
    server = strego.Server(broker, queues=queues, concurrency=concurrency)
    stats = {"first": 0.0, "last": 0.0, "count": 0}

    @server.handle("noop")
    async def noop(task: strego.Task) -> None:
        now = time.time()
        stats["first"] = stats["first"] or now
        stats["last"] = now
        stats["count"] += 1

    async with server:
        while not stop.is_set():
            await asyncio.sleep(0.05)
    await broker.aclose()
    out.send(stats)


# -- one configuration ---------------------------------------------------------------


async def _fill(url: str, prefix: str, queues: list[str], tasks: int) -> float:
    broker = strego.RedisBroker(url, group=GROUP, prefix=prefix)
    await broker.prepare(queues)
    batch = [strego.Task("noop", queue=queues[i % len(queues)]) for i in range(tasks)]
    started = time.perf_counter()
    async with strego.Client(broker) as client:
        for i in range(0, tasks, CHUNK):
            await client.enqueue_many(batch[i : i + CHUNK])
    elapsed = time.perf_counter() - started
    await broker.aclose()
    return tasks / elapsed


def _cpu_s(port: int) -> float:
    with redis.Redis(port=port) as r:
        info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _drain(
    url: str, prefix: str, queues: list[str], tasks: int, workers: int, concurrency: int
) -> float:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    pipes = []
    procs = []
    for _ in range(workers):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(url, prefix, queues, concurrency, stop, send))
        proc.start()
        pipes.append(receive)
        procs.append(proc)
    broker_check = strego.RedisBroker(url, group=GROUP, prefix=prefix)
    inspector = strego.Inspector(broker_check)

    async def processed() -> int:
        return sum([(await inspector.queue_info(q)).processed for q in queues])

    async def until_done() -> None:
        deadline = time.monotonic() + 300
        while await processed() < tasks:
            if time.monotonic() > deadline:
                raise TimeoutError("workers did not drain the queues within 300 s")
            await asyncio.sleep(0.1)
        await broker_check.aclose()

    asyncio.run(until_done())
    stop.set()
    reports = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(timeout=30)
    first = min(float(r["first"]) for r in reports if r["count"])
    last = max(float(r["last"]) for r in reports)
    return sum(int(r["count"]) for r in reports) / (last - first)


@dataclasses.dataclass
class Setup:
    name: str
    url: str
    ports: list[int]
    queues: list[str]
    enqueue: list[float] = dataclasses.field(default_factory=list)
    processed: list[float] = dataclasses.field(default_factory=list)
    cpu_ms: list[list[float]] = dataclasses.field(default_factory=list)

    def run_once(self, prefix: str, args: argparse.Namespace) -> None:
        self.enqueue.append(asyncio.run(_fill(self.url, prefix, self.queues, args.tasks)))
        before = [_cpu_s(p) for p in self.ports]
        self.processed.append(
            _drain(self.url, prefix, self.queues, args.tasks, args.workers, args.concurrency)
        )
        after = [_cpu_s(p) for p in self.ports]
        per_1k = args.tasks / 1000
        self.cpu_ms.append([(a - b) * 1000 / per_1k for a, b in zip(after, before, strict=True)])

    def row(self) -> Row:
        """Medians over the rounds (the machine is shared: single runs are noisy)."""
        cpu = [statistics.median(node) for node in zip(*self.cpu_ms, strict=True)]
        return Row(
            self.name,
            len(self.ports),
            self.queues,
            statistics.median(self.enqueue),
            statistics.median(self.processed),
            cpu,
        )


def run_all(args: argparse.Namespace) -> list[Row]:
    """Start every topology, then run the setups round-robin so drift hits all alike."""
    servers: list[EmbeddedRedis] = []
    clusters: list[ClusterTopology] = []
    try:
        single = EmbeddedRedis(binary=redis_binary()).start()
        servers.append(single)
        setups = [Setup("one Redis", single.url, [single.port], ["q0"])]
        for masters in args.masters:
            cluster = ClusterTopology(masters=masters, replicas=0).start()
            clusters.append(cluster)
            setups.append(
                Setup("cluster", cluster.url, cluster.master_ports(), cluster.queues_on_masters())
            )
        for round_no in range(args.repeat):
            for setup in setups:
                setup.run_once(f"bench{round_no}", args)
        return [setup.row() for setup in setups]
    finally:
        for server in servers:
            server.cleanup()
        for cluster in clusters:
            cluster.cleanup()


def table(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"{args.tasks} no-op tasks, {args.workers} worker processes x concurrency "
        f"{args.concurrency}, {multiprocessing.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; medians of {args.repeat} rounds",
        "",
        "| setup | masters | queues | enqueue x1000 tasks/s | processed tasks/s "
        "| Redis CPU ms per 1000 tasks, per master |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for row in rows:
        cpu = " / ".join(f"{c:.0f}" for c in row.redis_cpu_ms_per_1k)
        lines.append(
            f"| {row.setup} | {row.masters} | {', '.join(row.queues)} "
            f"| {row.enqueue_per_s:,.0f} | {row.processed_per_s:,.0f} | {cpu} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--masters", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
    args = parser.parse_args()
    print(table(run_all(args), args))


if __name__ == "__main__":
    main()
