"""Turn the outcomes into markdown tables (per workload, with ratios) and JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.systems import SYSTEMS

Results = dict[str, dict[str, dict[str, Any]]]  # workload -> system -> outcome

THROUGHPUT = {
    "enqueue_single": "Enqueue, one task per sequential await (tasks/s, higher is better)",
    "enqueue_bulk": "Enqueue in batches of 100, bulk API or pipeline/gather (tasks/s)",
    "processed_c10": "Processed/s: 1 worker process, concurrency 10",
    "processed_c100": "Processed/s: 1 worker process, concurrency 100",
    "processed_2p": "Processed/s: 2 worker processes x concurrency 10",
}

METHOD = [
    "One private redis-server (started for this run), FLUSHALL before every workload.",
    "Every system runs as subprocesses (its own venv) driven by the harness.",
    "Enqueue: wall time of N enqueues in one process, after connecting.",
    "Processed/s: the queue is pre-filled with N no-op tasks, then the workers start; "
    "rate = N / (last handler end - first handler start) over all worker processes, "
    "so worker start-up is excluded.",
    "Latency: one worker (concurrency 10), idle; tasks enqueued one at a time, each "
    "after the previous one started plus a 50 ms pause (so polling workers back off as "
    "they do when idle); lag = handler start - time.time() taken just before the "
    "enqueue call. 5 untimed warm-up tasks first.",
    "Result round trip: one worker (concurrency 10) idle; enqueue a task returning a "
    "value, then await it with the system's own API (see benchmarks/result_rtt.py); "
    "10 untimed warm-ups, 50 ms between round trips.",
    "Memory: Redis used_memory after the pre-fill minus before, per waiting task; "
    "residual = after processing (workers still connected) minus before, per task.",
]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def _rows(results: Results, workload: str) -> list[tuple[str, dict[str, Any]]]:
    found = results.get(workload, {})
    return [(s.label, found[s.name]) for s in SYSTEMS if s.name in found]


def _best_peer(
    results: Results, workload: str, metric: str, better: Callable[..., float]
) -> tuple[str, float] | None:
    found = results.get(workload, {})
    scored = [
        (s.label, float(found[s.name]["metrics"][metric]))
        for s in SYSTEMS
        if s.kind == "peer"
        and s.name in found
        and found[s.name]["ok"]
        and metric in found[s.name]["metrics"]
    ]
    return better(scored, key=lambda pair: pair[1]) if scored else None


def _metric(results: Results, workload: str, system: str, metric: str) -> float | None:
    outcome = results.get(workload, {}).get(system)
    if not outcome or not outcome["ok"]:
        return None
    value = outcome["metrics"].get(metric)
    return None if value is None else float(value)


def ratio_line(results: Results, workload: str, metric: str, *, lower_is_better: bool) -> str:
    strego = _metric(results, workload, "strego", metric)
    if strego is None:
        return "_strego ratios: n/a (no strego result)_"
    parts = []
    ceiling = _metric(results, workload, "ceiling", metric)
    if ceiling:
        parts.append(f"strego / ceiling = **{strego / ceiling:.2f}x**")
    one_rtt = _metric(results, workload, "ceiling-1rtt", metric)
    if one_rtt:
        parts.append(f"strego / 1-round-trip ceiling = {strego / one_rtt:.2f}x")
    best = _best_peer(results, workload, metric, min if lower_is_better else max)
    if best and best[1]:
        vs_best = strego / best[1]
        parts.append(f"strego / best peer ({best[0]}, {best[1]:,.1f}) = **{vs_best:.2f}x**")
    sense = "lower is better" if lower_is_better else "higher is better"
    return f"_{'; '.join(parts)} ({sense})_" if parts else ""


def throughput_table(results: Results, workload: str) -> list[str]:
    lines = [f"### {THROUGHPUT[workload]}", "", "| system | tasks/s | n | wall s | note |"]
    lines.append("| --- | ---: | ---: | ---: | --- |")
    for label, out in _rows(results, workload):
        m = out["metrics"]
        if not out["ok"]:
            lines.append(f"| {label} | failed | | | {out['error']} |")
            continue
        n = m.get("count", m.get("n"))
        wall = m.get("wall_s", m.get("elapsed_s"))
        rate = _fmt(m.get("tasks_per_s"))
        lines.append(f"| {label} | {rate} | {_fmt(n)} | {_fmt(wall, 2)} | {out['note']} |")
    return [*lines, "", ratio_line(results, workload, "tasks_per_s", lower_is_better=False), ""]


def latency_table(results: Results, workload: str, title: str) -> list[str]:
    lines = [f"### {title}", "", "| system | p50 ms | p95 ms | p99 ms | max ms | n | note |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, out in _rows(results, workload):
        m = out["metrics"]
        if not out["ok"]:
            lines.append(f"| {label} | failed | | | | | {out['error']} |")
            continue
        cells = " | ".join(_fmt(m.get(k), 2) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        lines.append(f"| {label} | {cells} | {_fmt(m.get('n'))} | {out['note']} |")
    return [*lines, ""]


def memory_table(results: Results) -> list[str]:
    lines = ["### Redis memory per task (bytes, from the concurrency-10 run)", ""]
    lines += ["| system | per waiting task | residual per processed task |"]
    lines += ["| --- | ---: | ---: |"]
    for label, out in _rows(results, "processed_c10"):
        m = out["metrics"]
        waiting, residual = m.get("bytes_per_waiting_task"), m.get("residual_bytes_per_task")
        if waiting is None:
            lines.append(f"| {label} | failed | |")
        else:
            lines.append(f"| {label} | {_fmt(waiting)} | {_fmt(residual)} |")
    return [*lines, ""]


def rss_table(results: Results) -> list[str]:
    out = results.get("rss", {}).get("strego")
    if out is None:
        return []
    lines = ["### strego worker RSS (1 process, concurrency 10)", ""]
    if not out["ok"]:
        return [*lines, f"failed: {out['error']}", ""]
    m = out["metrics"]
    lines += ["| tasks run | RSS warm MB | RSS after MB | growth MB | Redis used MB after |"]
    lines += ["| ---: | ---: | ---: | ---: | ---: |"]
    growth = m["rss_after_mb"] - m["rss_before_mb"]
    cells = [_fmt(m["tasks"]), _fmt(m["rss_before_mb"], 1), _fmt(m["rss_after_mb"], 1)]
    cells += [_fmt(growth, 1), _fmt(m["redis_used_mb_after"], 1)]
    return [*lines, "| " + " | ".join(cells) + " |", ""]


def summary_table(results: Results) -> list[str]:
    cols = [
        ("enqueue_single", "tasks_per_s", "enqueue 1/await", 0),
        ("enqueue_bulk", "tasks_per_s", "enqueue x100", 0),
        ("processed_c10", "tasks_per_s", "proc c10", 0),
        ("processed_c100", "tasks_per_s", "proc c100", 0),
        ("processed_2p", "tasks_per_s", "proc 2p x c10", 0),
        ("latency", "p50_ms", "idle p50 ms", 2),
        ("latency", "p99_ms", "idle p99 ms", 2),
        ("result_rtt", "p99_ms", "result RTT p99 ms", 2),
    ]
    lines = ["| system | " + " | ".join(c[2] for c in cols) + " |"]
    lines.append("| --- |" + " ---: |" * len(cols))
    for system in SYSTEMS:
        if not any(system.name in results.get(c[0], {}) for c in cols):
            continue
        cells = []
        for workload, metric, _title, digits in cols:
            out = results.get(workload, {}).get(system.name)
            if out is None:
                cells.append("-")
            elif not out["ok"]:
                cells.append("failed")
            else:
                cells.append(_fmt(out["metrics"].get(metric), digits))
        lines.append(f"| {system.label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def markdown(doc: dict[str, Any]) -> str:
    results: Results = doc["results"]
    m = doc["machine"]
    lines = [f"# strego benchmarks ({doc['mode']} run, {doc['started']})", ""]
    lines += [
        f"- machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, {m['platform']}",
        f"- Python {m['python']}, Redis {m['redis']} (private server, no persistence)",
        f"- load average at start {m['loadavg_start']}, at end {m.get('loadavg_end')}; "
        f"took {doc['duration_s']:.0f}s",
        "- sizes: " + ", ".join(f"{k}={v}" for k, v in doc["params"].items()),
        "",
        "## Method",
        "",
        *(f"- {line}" for line in METHOD),
        "",
        "## Summary",
        "",
        *summary_table(results),
        "## Workloads",
        "",
    ]
    for workload in THROUGHPUT:
        if workload in results:
            lines += throughput_table(results, workload)
    if "latency" in results:
        title = "Idle latency, enqueue -> handler start (ms, lower is better)"
        lines += latency_table(results, "latency", title)
        lines += [ratio_line(results, "latency", "p50_ms", lower_is_better=True), ""]
    if "result_rtt" in results:
        title = "Enqueue -> result round trip on an idle worker (ms, lower is better)"
        lines += latency_table(results, "result_rtt", title)
        lines += [ratio_line(results, "result_rtt", "p99_ms", lower_is_better=True), ""]
    if "processed_c10" in results:
        lines += memory_table(results)
    if "scheduled" in results:
        title = "strego scheduled tasks: start lateness = handler start - due time (ms)"
        lines += latency_table(results, "scheduled", title)
    lines += rss_table(results)
    lines += ["## Systems and settings", "", "| system | versions | settings |"]
    lines += ["| --- | --- | --- |"]
    for system in SYSTEMS:
        info = doc["systems"].get(system.name)
        if info:
            lines.append(f"| {system.label} | {info['version']} | {info['settings']} |")
    return "\n".join(lines) + "\n"
