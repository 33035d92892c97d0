"""Pure arithmetic over what the workers recorded: rates and percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (inclusive quantiles)."""
    if not samples_s:
        return {}
    ms = sorted(s * 1000 for s in samples_s)
    if len(ms) == 1:
        return {"p50_ms": ms[0], "p95_ms": ms[0], "p99_ms": ms[0], "max_ms": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": cuts[49], "p95_ms": cuts[94], "p99_ms": cuts[98], "max_ms": ms[-1]}


def throughput(snapshots: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Tasks per second from the first handler start to the last handler end, all workers."""
    started = [s["first_start"] for s in snapshots if s.get("first_start")]
    ended = [s["last_done"] for s in snapshots if s.get("last_done")]
    count = sum(int(s["count"]) for s in snapshots)
    if not started or not ended or count == 0:
        return {"count": count}
    wall = max(ended) - min(started)
    found = {"count": count, "wall_s": wall, "tasks_per_s": count / wall if wall > 0 else 0.0}
    cpu = [s["cpu_last"] - s["cpu_first"] for s in snapshots if s.get("cpu_last") is not None]
    if cpu:
        found["worker_cpu_us_per_task"] = sum(cpu) / count * 1e6
    return found


def lags(snapshots: Sequence[dict[str, Any]]) -> list[float]:
    return [lag for s in snapshots for lag in s.get("lags", [])]
