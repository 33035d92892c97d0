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
    "processed_c10_pinned": "Processed/s: 1 worker process, concurrency 10; Redis pinned to "
    "CPU 0, the worker to CPU 1",
    "processed_2p_pinned": "Processed/s: 2 worker processes x concurrency 10; Redis pinned to "
    "CPU 0, the workers to CPU 1",
    "sleep_sync_c50": "Real work: sync handlers sleeping 10 ms (blocking I/O), concurrency 50 "
    "(ideal 5,000/s)",
    "sleep_async_c200": "Real work: async handlers awaiting 10 ms, concurrency 200 "
    "(ideal 20,000/s)",
    "payload_10k": "Payload 10 KB, 1 worker process, concurrency 10",
    "payload_1m": "Payload 1 MB, 1 worker process, concurrency 10",
}

IDEAL = {"sleep_sync_c50": 5_000.0, "sleep_async_c200": 20_000.0}

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
    "Redis CPU per task: INFO cpu (used_cpu_user + used_cpu_sys: commands, parsing and "
    "socket I/O) before and after each phase, over N: the bulk pre-fill (enqueue) and the "
    "processing (fetch + ack, and whatever else the workers send while they run); "
    "commandstats (reset per phase) give the calls per task.",
    "Pinned variants: Redis's process on CPU 0 and every worker process on CPU 1 "
    "(sched_setaffinity, as taskset does); the harness is not pinned.",
    "Real work: the queue pre-filled, then handlers that sleep 10 ms (time.sleep in a sync "
    "handler, which each system runs in threads) or await asyncio.sleep(0.01), so the ideal "
    "rate is concurrency / 10 ms; payloads are a string of that many bytes in the task.",
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


def cpu_table(results: Results) -> list[str]:
    """Redis CPU microseconds per task, by phase, with the ratio to the ceiling's."""
    lines = ["### Redis and worker CPU per task (us; lower is better)", ""]
    lines += [
        "enqueue 1/await: the single-enqueue run; bulk enqueue + fetch/ack: the pre-fill "
        "and the processing phase of the concurrency-10 run (total = their sum, what one "
        "task costs Redis end to end with batching); c100 and 2p: totals of those runs. "
        "Worker CPU: the worker processes' own CPU (every thread) from the first handler "
        "start to the last handler end, over the tasks they ran.",
        "",
        "| system | enqueue 1/await | bulk enqueue | fetch + ack | total c10 | x ceiling "
        "| total c100 | total 2p | worker CPU c10 | worker CPU 2p | calls/task in fetch + ack |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    ceiling = _metric(results, "processed_c10", "ceiling", "redis_cpu_us_per_task")
    for system in SYSTEMS:
        if not any(system.name in results.get(w, {}) for w in ("processed_c10", "enqueue_single")):
            continue
        single = _metric(results, "enqueue_single", system.name, "redis_cpu_us_per_task")
        bulk = _metric(results, "processed_c10", system.name, "redis_cpu_us_enqueue")
        proc = _metric(results, "processed_c10", system.name, "redis_cpu_us_process")
        total = _metric(results, "processed_c10", system.name, "redis_cpu_us_per_task")
        c100 = _metric(results, "processed_c100", system.name, "redis_cpu_us_per_task")
        two = _metric(results, "processed_2p", system.name, "redis_cpu_us_per_task")
        ratio = f"{total / ceiling:.2f}x" if total and ceiling else ""
        out = results.get("processed_c10", {}).get(system.name) or {}
        commands = (out.get("redis") or {}).get("process", {}).get("commands", {})
        calls = ", ".join(f"{name} {v['calls']:.2f}" for name, v in list(commands.items())[:6])
        cells = [_fmt(single, 1), _fmt(bulk, 1), _fmt(proc, 1), _fmt(total, 1), ratio]
        w10 = _metric(results, "processed_c10", system.name, "worker_cpu_us_per_task")
        w2p = _metric(results, "processed_2p", system.name, "worker_cpu_us_per_task")
        cells += [_fmt(c100, 1), _fmt(two, 1), _fmt(w10, 1), _fmt(w2p, 1), calls]
        lines.append(f"| {system.label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def real_work_table(results: Results) -> list[str]:
    """The real-work workloads: share of the ideal rate, and payload bytes/s."""
    lines = ["### Real work (share of the ideal rate; payload MB/s vs the ceiling)", ""]
    lines += ["| system | sleep_sync c50 /s | % of 5,000 | sleep_async c200 /s | % of 20,000 "
              "| 10 KB tasks/s | 10 KB MB/s | 1 MB tasks/s | 1 MB MB/s |"]  # fmt: skip
    lines += ["| --- |" + " ---: |" * 8]
    for system in SYSTEMS:
        if not any(system.name in results.get(w, {}) for w in (*IDEAL, "payload_10k")):
            continue
        cells = []
        for workload, ideal in IDEAL.items():
            rate = _metric(results, workload, system.name, "tasks_per_s")
            cells += [_fmt(rate), f"{100 * rate / ideal:.0f} %" if rate else ""]
        for workload in ("payload_10k", "payload_1m"):
            cells.append(_fmt(_metric(results, workload, system.name, "tasks_per_s")))
            cells.append(_fmt(_metric(results, workload, system.name, "mb_per_s"), 1))
        lines.append(f"| {system.label} | " + " | ".join(cells) + " |")
    lines.append("")
    for workload in ("payload_10k", "payload_1m"):
        if workload in results:
            lines += [ratio_line(results, workload, "tasks_per_s", lower_is_better=False), ""]
    return lines


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
        ("processed_2p_pinned", "tasks_per_s", "2p pinned", 0),
        ("processed_c10", "redis_cpu_us_per_task", "Redis us/task", 1),
        ("sleep_sync_c50", "tasks_per_s", "sync 10ms c50", 0),
        ("sleep_async_c200", "tasks_per_s", "async 10ms c200", 0),
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
    if "processed_c10" in results or "enqueue_single" in results:
        lines += cpu_table(results)
    if any(w in results for w in (*IDEAL, "payload_10k", "payload_1m")):
        lines += real_work_table(results)
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
