"""The workloads: each one runs a system's adapter against a freshly flushed Redis.

Every workload returns an ``Outcome``; a failure is an outcome with a reason, never an
exception that stops the run. Throughput is measured with the queue pre-filled, from
the first handler start to the last handler end across all worker processes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from benchmarks import stats
from benchmarks.params import Params
from benchmarks.procs import Adapter, BenchError, Workers, rss_mb
from benchmarks.result_rtt import result_rtt
from benchmarks.server import PrivateRedis


@dataclasses.dataclass(slots=True, kw_only=True)
class Outcome:
    ok: bool
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    note: str = ""
    error: str = ""


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
    result = ctx.adapter.drive(
        f"enqueue-{mode}", "enqueue", ctx.redis.url, options, ctx.params.enqueue_timeout_s
    )
    elapsed = float(result["elapsed_s"])
    return Outcome(ok=True, metrics={"tasks_per_s": n / elapsed, "n": n, "elapsed_s": elapsed})


def fill(ctx: Context, name: str, n: int) -> None:
    options = ["--n", str(n), "--mode", "bulk", "--batch", str(ctx.params.batch)]
    ctx.adapter.drive(name, "enqueue", ctx.redis.url, options, ctx.params.enqueue_timeout_s)


def processed(ctx: Context, *, procs: int, concurrency: int) -> Outcome:
    """Pre-fill N tasks, start the workers, time first start to last done."""
    n = ctx.params.processed_n
    name = f"processed-p{procs}-c{concurrency}"
    ctx.redis.flush()
    before = ctx.redis.used_memory()
    fill(ctx, f"{name}-fill", n)
    waiting = ctx.redis.used_memory()
    with Workers(ctx.adapter, name, ctx.redis.url, count=procs) as workers:
        workers.start(concurrency)
        finished = workers.wait_processed(n, ctx.params.process_timeout_s)
        time.sleep(0.5)  # let the last acks land before reading memory
        after = ctx.redis.used_memory()
        snapshots = workers.stats()
    metrics = stats.throughput(snapshots)
    metrics["bytes_per_waiting_task"] = (waiting - before) / n
    metrics["residual_bytes_per_task"] = (after - before) / n
    count = int(metrics["count"])
    if "tasks_per_s" not in metrics:
        return Outcome(ok=False, metrics=metrics, error=f"no task ran in {n} queued")
    note = ""
    if not finished:
        note = f"timeout after {ctx.params.process_timeout_s:.0f}s: rate over {count}/{n} tasks"
    elif count > n:
        note = f"{count - n} duplicate runs"
    return Outcome(ok=True, metrics=metrics, note=note)


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
