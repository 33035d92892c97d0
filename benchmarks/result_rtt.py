"""Enqueue → result round trip on an idle worker (issue #15), p50/p99, strego vs peers.

Each system's own "enqueue, then wait for the return value" API: strego's
``Client.result`` (pushed), arq's ``job.result()``, taskiq's ``wait_result`` and SAQ's
``Queue.apply`` (all three poll; tuned here to every 1 ms, defaults 0.5 s, 0.2 s and
0.5 s), and the raw redis-py ceiling (XADD and
BLPOP on a per-task list in one pipeline). One worker at concurrency 10, started with
``BENCH_RESULTS=1``; 10 untimed warm-ups, then ``n`` sequential round trips with a
50 ms pause between them (the worker idles, as in the latency workload).

Part of ``scripts/bench`` (workload ``result_rtt``); alone:

    PYTHONPATH=src .venv/bin/python -m benchmarks.result_rtt [--n 200] [--only strego,arq]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from benchmarks import stats
from benchmarks.procs import Adapter, Workers

if TYPE_CHECKING:  # workloads imports this module to register the workload
    from benchmarks.workloads import Context, Outcome

RESULT_SYSTEMS = frozenset({"ceiling", "strego", "arq", "saq", "taskiq"})


def result_rtt(ctx: Context) -> Outcome:
    from benchmarks.workloads import Outcome

    params, redis, adapter = ctx.params, ctx.redis, ctx.adapter
    redis.flush()
    with_results = Adapter(adapter.python, adapter.script.name, {"BENCH_RESULTS": "1"},
                           adapter.logs)  # fmt: skip
    n = params.latency_n
    with Workers(with_results, "result-rtt", redis.url) as workers:
        workers.start(concurrency=10)
        options = ["--n", str(n), "--gap", str(params.latency_gap_s)]
        found = with_results.drive(
            "result-rtt", "rtt", redis.url, options, params.latency_timeout_s, workers.check_alive
        )
    samples = [float(s) for s in found["samples"]]
    return Outcome(ok=True, metrics={**stats.percentiles(samples), "n": len(samples)})


def main(argv: list[str] | None = None) -> int:
    from benchmarks.cli import run_system
    from benchmarks.params import Params
    from benchmarks.server import PrivateRedis
    from benchmarks.systems import select
    from benchmarks.venvs import BENCH_DIR

    parser = argparse.ArgumentParser(prog="python -m benchmarks.result_rtt")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--only", default=",".join(sorted(RESULT_SYSTEMS)))
    args = parser.parse_args(argv)
    params = dataclasses.replace(Params.full(), latency_n=args.n)
    logs = BENCH_DIR / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-rtt")
    redis = PrivateRedis().start()
    rows = {}
    try:
        for system in select(args.only):
            if "result_rtt" in system.workloads:
                _, outcomes = run_system(system, ["result_rtt"], params, redis, logs)
                rows[system.name] = outcomes["result_rtt"]
    finally:
        redis.stop()
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
