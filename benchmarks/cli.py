"""``scripts/bench``: start a private Redis, run every system's workloads, write the report."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import machine, report, workloads
from benchmarks.params import Params
from benchmarks.procs import Adapter, BenchError
from benchmarks.server import PrivateRedis
from benchmarks.systems import System, select
from benchmarks.venvs import BENCH_DIR, VenvError, interpreter

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = tuple(workloads.WORKLOADS)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma list of systems (default: all)")
    parser.add_argument("--workloads", help=f"comma list of {', '.join(ORDER)}")
    parser.add_argument("--out", type=Path, help="results dir (default: benchmarks/results)")
    return parser.parse_args(argv)


def summary(outcome: workloads.Outcome) -> str:
    if not outcome.ok:
        return f"FAILED: {outcome.error}"
    m = outcome.metrics
    if "tasks_per_s" in m:
        text = f"{m['tasks_per_s']:,.0f} tasks/s"
    elif "p50_ms" in m:
        text = f"p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms"
    else:
        text = ", ".join(f"{k}={v:,.1f}" for k, v in m.items())
    return f"{text} {outcome.note}".strip()


def run_system(
    system: System, chosen: list[str], params: Params, redis: PrivateRedis, logs: Path
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """All of one system's workloads; a broken install fails them all with its reason."""
    info: dict[str, Any] = {"settings": system.settings, "version": "?"}
    todo = [w for w in chosen if w in system.workloads]
    try:
        python = interpreter(system)
        adapter = Adapter(python, system.adapter, system.env, logs / system.name)
        info["version"] = adapter.drive("version", "version", redis.url, [], 120)["version"]
    except (VenvError, BenchError) as exc:
        log(f"  {system.name}: FAILED to set up: {exc}")
        failed = workloads.Outcome(ok=False, error=f"setup: {exc}")
        return info, {w: workloads.as_json(failed) for w in todo}
    info["python"] = str(python)
    outcomes = {}
    for workload in todo:
        started = time.monotonic()
        ctx = workloads.Context(params=params, redis=redis, adapter=adapter)
        outcome = workloads.run(workload, ctx)
        took = time.monotonic() - started
        log(f"  {system.name:13} {workload:15} {summary(outcome)}  [{took:.0f}s]")
        outcomes[workload] = workloads.as_json(outcome)
    return info, outcomes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = Params.quick() if args.quick else Params.full()
    chosen = [w.strip() for w in args.workloads.split(",")] if args.workloads else list(ORDER)
    unknown = set(chosen) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown workload(s): {', '.join(sorted(unknown))}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = BENCH_DIR / "runs" / stamp
    started = time.monotonic()
    redis = PrivateRedis().start()
    log(f"private redis-server {redis.version()} on {redis.url}; logs in {logs}")
    doc: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started": stamp,
        "machine": machine.describe(redis.version()),
        "params": dataclasses.asdict(params),
        "method": report.METHOD,
        "systems": {},
        "results": {},
    }
    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    base = "quick" if args.quick else "latest"
    try:
        for system in select(args.only):
            log(f"{system.label}")
            info, outcomes = run_system(system, chosen, params, redis, logs)
            doc["systems"][system.name] = info
            for workload, outcome in outcomes.items():
                doc["results"].setdefault(workload, {})[system.name] = outcome
            # What is measured so far survives an interrupted run (a slow peer, ^C).
            _write(doc, started, out / f"{base}.partial")
    finally:
        redis.stop()
    text = _write(doc, started, out / base)
    (out / f"{base}.partial.json").unlink(missing_ok=True)
    (out / f"{base}.partial.md").unlink(missing_ok=True)
    print(text)
    log(f"wrote {out / base}.json and .md")
    return 0


def _write(doc: dict[str, Any], started: float, base: Path) -> str:
    doc["machine"]["loadavg_end"] = list(os.getloadavg())
    doc["duration_s"] = time.monotonic() - started
    text = report.markdown(doc)
    base.with_name(base.name + ".json").write_text(json.dumps(doc, indent=2) + "\n")
    base.with_name(base.name + ".md").write_text(text)
    return text
