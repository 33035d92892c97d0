"""The workloads: each one runs a system's adapter against a freshly flushed Redis.

Every workload returns an ``Outcome``; a failure is an outcome with a reason, never an
exception that stops the run. Throughput is measured with the queue pre-filled, from
the first handler start to the last handler end across all worker processes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks import stats
from benchmarks.params import Params
from benchmarks.procs import Adapter, BenchError, Workers, rss_mb
from benchmarks.result_rtt import result_rtt
from benchmarks.server import PrivateRedis, Usage


@dataclasses.dataclass(slots=True, kw_only=True)
class Outcome:
    ok: bool
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    note: str = ""
    error: str = ""
    # Redis's own cost per task, by phase: CPU us and command calls (see redis_cost)
    redis: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    params: Params
    redis: PrivateRedis
    adapter: Adapter


def enqueue_single(ctx: Context) -> Outcome:
    return _enqueue(ctx, "single", ctx.params.enqueue_single_n)


def enqueue_bulk(ctx: Context) -> Outcome:
    return _enqueue(ctx, "bulk", ctx.params.enqueue_bulk_n)


def _enqueue(ctx: Context, mode: str, n: int) -> Outcome:
    ctx.redis.flush()
    options = ["--n", str(n), "--mode", mode, "--batch", str(ctx.params.batch)]
    start = _usage(ctx)
    result = ctx.adapter.drive(
        f"enqueue-{mode}", "enqueue", ctx.redis.url, options, ctx.params.enqueue_timeout_s
    )
    cost = redis_cost(start, ctx.redis.cpu_usage(), n)
    elapsed = float(result["elapsed_s"])
    metrics = {"tasks_per_s": n / elapsed, "n": n, "elapsed_s": elapsed}
    metrics["redis_cpu_us_per_task"] = cost["cpu_us"]
    return Outcome(ok=True, metrics=metrics, redis={"enqueue": cost})


def fill(ctx: Context, name: str, n: int, payload_bytes: int = 0) -> None:
    batch = ctx.params.batch if payload_bytes < 100_000 else 10
    options = ["--n", str(n), "--mode", "bulk", "--batch", str(batch)]
    options += ["--payload-bytes", str(payload_bytes)]
    ctx.adapter.drive(name, "enqueue", ctx.redis.url, options, ctx.params.enqueue_timeout_s)


def _usage(ctx: Context) -> Usage:
    """Redis's CPU so far, with its command counters zeroed from here."""
    usage = ctx.redis.cpu_usage()
    ctx.redis.reset_commandstats()
    return usage


def redis_cost(start: Usage, end: Usage, n: int) -> dict[str, Any]:
    """Redis's cost per task between two usages: CPU microseconds (user + sys: command
    execution, parsing and socket I/O) and, per command, calls and microseconds per
    task. Commands a script runs are counted too, and inside EVALSHA's time as well, so
    the microseconds of different commands must not be added up."""
    commands = {
        name: {"calls": calls / n, "us": usec / n}
        for name, (calls, usec) in sorted(end.commands.items(), key=lambda kv: -kv[1][1])
        if calls / n >= 0.01
    }
    return {"cpu_us": (end.cpu_s - start.cpu_s) / n * 1e6, "commands": commands}


def processed(
    ctx: Context,
    *,
    procs: int,
    concurrency: int,
    n: int | None = None,
    handler: str = "noop",
    payload_bytes: int = 0,
    pin: bool = False,
) -> Outcome:
    """Pre-fill N tasks, start the workers, time first start to last done.

    ``handler`` is what each handler does (see adapters/_common.py); ``pin`` puts Redis
    on the first CPU and every worker on the others (``sched_setaffinity``, what
    ``taskset`` does), so the two never compete for a core.
    """
    n = n or ctx.params.processed_n
    name = f"processed-p{procs}-c{concurrency}-{handler}-{payload_bytes}{'-pinned' if pin else ''}"
    ctx.redis.flush()
    before = ctx.redis.used_memory()
    start = _usage(ctx)
    fill(ctx, f"{name}-fill", n, payload_bytes)
    filled = _usage(ctx)
    waiting = ctx.redis.used_memory()
    cpus = sorted(os.sched_getaffinity(0))
    worker_cpus = None
    if pin:
        if len(cpus) < 2:
            return Outcome(ok=False, error="pinning needs 2 CPUs")
        os.sched_setaffinity(ctx.redis.pid, {cpus[0]})
        worker_cpus = set(cpus[1:])
    try:
        with Workers(ctx.adapter, name, ctx.redis.url, count=procs) as workers:
            workers.start(
                concurrency,
                env={"BENCH_HANDLER": handler, "BENCH_PAYLOAD_BYTES": str(payload_bytes)},
                cpus=worker_cpus,
            )
            finished = workers.wait_processed(n, ctx.params.process_timeout_s)
            time.sleep(0.5)  # let the last acks land before reading memory
            done = ctx.redis.cpu_usage()
            after = ctx.redis.used_memory()
            snapshots = workers.stats()
    finally:
        if pin:
            os.sched_setaffinity(ctx.redis.pid, set(cpus))
    metrics = stats.throughput(snapshots)
    metrics["bytes_per_waiting_task"] = (waiting - before) / n
    metrics["residual_bytes_per_task"] = (after - before) / n
    enqueue_cost = redis_cost(start, filled, n)
    process_cost = redis_cost(filled, done, n)
    metrics["redis_cpu_us_enqueue"] = enqueue_cost["cpu_us"]
    metrics["redis_cpu_us_process"] = process_cost["cpu_us"]
    metrics["redis_cpu_us_per_task"] = enqueue_cost["cpu_us"] + process_cost["cpu_us"]
    if payload_bytes and "tasks_per_s" in metrics:
        metrics["payload_bytes"] = payload_bytes
        metrics["mb_per_s"] = metrics["tasks_per_s"] * payload_bytes / 2**20
    count = int(metrics["count"])
    redis = {"enqueue": enqueue_cost, "process": process_cost}
    if "tasks_per_s" not in metrics:
        return Outcome(ok=False, metrics=metrics, error=f"no task ran in {n} queued", redis=redis)
    note = ""
    if not finished:
        note = f"timeout after {ctx.params.process_timeout_s:.0f}s: rate over {count}/{n} tasks"
    elif count > n:
        note = f"{count - n} duplicate runs"
    return Outcome(ok=True, metrics=metrics, note=note, redis=redis)


def latency(ctx: Context) -> Outcome:
    """Sequential tasks on an idle worker (concurrency 10): enqueue stamp to handler start."""
    gap = ["--gap", str(ctx.params.latency_gap_s)]
    return _timed_starts(ctx, "latency", ctx.params.latency_n, gap)


def scheduled(ctx: Context) -> Outcome:
    """Tasks due over a few seconds: handler start minus due time (lateness)."""
    spacing = ["--spacing", str(ctx.params.scheduled_spacing_s), "--lead", "1.5"]
    return _timed_starts(ctx, "schedule", ctx.params.scheduled_n, spacing)


def _timed_starts(ctx: Context, role: str, n: int, extra: list[str]) -> Outcome:
    ctx.redis.flush()
    with Workers(ctx.adapter, role, ctx.redis.url) as workers:
        workers.start(concurrency=10, interval_s=0.002)
        options = ["--n", str(n), "--stats-dir", str(workers.stats_dir), *extra]
        timeout_s = ctx.params.latency_timeout_s
        ctx.adapter.drive(role, role, ctx.redis.url, options, timeout_s, workers.check_alive)
        samples = stats.lags(workers.stats())
    if len(samples) < n:
        raise BenchError(f"only {len(samples)}/{n} timed tasks were recorded")
    return Outcome(ok=True, metrics={**stats.percentiles(samples), "n": len(samples)})


def rss(ctx: Context) -> Outcome:
    """Worker RSS after a warm-up and again after ``rss_n`` more tasks (c10, 1 process)."""
    p = ctx.params
    ctx.redis.flush()
    warmup = 2_000
    with Workers(ctx.adapter, "rss", ctx.redis.url) as workers:
        workers.start(concurrency=10)
        fill(ctx, "rss-warmup", warmup)
        if not workers.wait_processed(warmup, p.process_timeout_s):
            raise BenchError("warm-up tasks did not finish")
        (pid,) = workers.pids()
        before = rss_mb(pid)
        started = time.monotonic()
        done = warmup
        while done < warmup + p.rss_n:
            chunk = min(p.rss_chunk, warmup + p.rss_n - done)
            fill(ctx, "rss-fill", chunk)
            done += chunk
            remaining = p.rss_timeout_s - (time.monotonic() - started)
            if remaining <= 0 or not workers.wait_processed(done, remaining):
                raise BenchError(f"timeout after {p.rss_timeout_s:.0f}s at {done} tasks")
        after = rss_mb(pid)
        redis_after = ctx.redis.used_memory()
    metrics = {"rss_before_mb": before, "rss_after_mb": after, "tasks": float(p.rss_n)}
    metrics["redis_used_mb_after"] = redis_after / 2**20
    return Outcome(ok=True, metrics=metrics)


WORKLOADS: dict[str, Callable[[Context], Outcome]] = {
    "enqueue_single": enqueue_single,
    "enqueue_bulk": enqueue_bulk,
    "processed_c10": lambda ctx: processed(ctx, procs=1, concurrency=10),
    "processed_c100": lambda ctx: processed(ctx, procs=1, concurrency=100),
    "processed_2p": lambda ctx: processed(ctx, procs=2, concurrency=10),
    "processed_2p_pinned": lambda ctx: processed(ctx, procs=2, concurrency=10, pin=True),
    "processed_c10_pinned": lambda ctx: processed(ctx, procs=1, concurrency=10, pin=True),
    # Real work: 10 ms of blocking I/O in sync handlers (threads), 10 ms awaited in async
    # handlers, and payloads (bytes/s): see adapters/_common.py for the handlers.
    "sleep_sync_c50": lambda ctx: processed(
        ctx, procs=1, concurrency=50, n=ctx.params.sleep_sync_n, handler="sleep_sync"
    ),
    "sleep_async_c200": lambda ctx: processed(
        ctx, procs=1, concurrency=200, n=ctx.params.sleep_async_n, handler="sleep_async"
    ),
    "payload_10k": lambda ctx: processed(
        ctx, procs=1, concurrency=10, n=ctx.params.payload_10k_n, payload_bytes=10_000
    ),
    "payload_1m": lambda ctx: processed(
        ctx, procs=1, concurrency=10, n=ctx.params.payload_1m_n, payload_bytes=1_000_000
    ),
    "latency": latency,
    "scheduled": scheduled,
    "rss": rss,
    "result_rtt": lambda ctx: result_rtt(ctx),  # benchmarks/result_rtt.py (issue #15)
}


def run(name: str, ctx: Context) -> Outcome:
    """Run one workload; any failure becomes an outcome with the reason."""
    try:
        return WORKLOADS[name](ctx)
    except BenchError as exc:
        return Outcome(ok=False, error=str(exc))
    except Exception as exc:  # a harness bug must not lose the other systems' results
        return Outcome(ok=False, error=f"harness error: {type(exc).__name__}: {exc}")


def as_json(outcome: Outcome) -> dict[str, Any]:
    return dataclasses.asdict(outcome)
