"""Fan-out/fan-in of N no-op members (issue #20): time to the callback, strego chord
vs the same N tasks without a workflow, vs the raw redis-py ceiling, vs Celery's chord.

* ``ceiling``: XADD N entries (pipelined), one consumer drains them with XREADGROUP
  COUNT 100 + pipelined XACK, then one more entry (the "callback"): no workflow logic.
* ``strego plain``: ``enqueue_many`` of N no-op tasks, then wait until the queue's
  ``processed`` counter reaches N (polled every 2 ms).
* ``strego chord``: ``enqueue(chord([N no-op], callback))`` then ``client.result``
  of the workflow (pushed): the callback got N results (None each).
* ``celery chord``: the same chord in Celery (redis broker and result backend), run
  by the Celery venv of ``scripts/bench`` (skipped with a note when it is missing);
  once (it takes minutes at N = 10 000).

One worker process at concurrency 50 per system, started (and idle) before the clock
starts; ``--repeat`` runs each, the median is reported. Not part of ``scripts/bench``'s
default workloads (it needs a few minutes); alone:

    PYTHONPATH=src .venv/bin/python -m benchmarks.workflows [--n 10000] [--repeat 3]
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
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

import strego
from benchmarks.server import PrivateRedis
from benchmarks.venvs import VENVS

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 50


def worker_main(url: str, prefix: str) -> None:
    """The strego worker process (``--worker``)."""
    broker = strego.RedisBroker(url, prefix=prefix, group="bench")
    server = strego.Server(broker, concurrency=CONCURRENCY, keep_completed=0)

    @server.handle("noop")
    async def noop(task: strego.Task) -> None:
        return None

    @server.handle("callback")
    async def callback(task: strego.Task) -> int:
        return len(task.upstream_results)

    server.run()


def start_worker(url: str, prefix: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.workflows", "--worker", url, prefix],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _worker_ready(broker: strego.RedisBroker) -> None:
    while not await broker.redis.zcard(broker.global_keys.workers):
        await asyncio.sleep(0.01)


async def strego_run(url: str, n: int, chord: bool) -> float:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    proc = start_worker(url, prefix)
    broker = strego.RedisBroker(url, prefix=prefix, group="bench")
    try:
        await asyncio.wait_for(_worker_ready(broker), 60)
        client = strego.Client(broker)
        members = [strego.Task("noop") for _ in range(n)]
        started = time.perf_counter()
        if chord:
            info = await client.enqueue(strego.chord(members, strego.Task("callback")))
            assert await client.result(info.id, timeout=600) == n
        else:
            await client.enqueue_many(members)
            stats = broker.keys("default").stats
            while int(await broker.redis.hget(stats, "processed") or 0) < n:
                await asyncio.sleep(0.002)
        return time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(30)
        await broker.aclose()


async def ceiling_run(url: str, n: int) -> float:
    r = aioredis.from_url(url)
    stream = f"ceiling:{uuid.uuid4().hex[:8]}"
    await r.xgroup_create(stream, "g", id="0", mkstream=True)
    started = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for _ in range(n + 1):
        pipe.xadd(stream, {"d": b"x"})
    await pipe.execute()
    done = 0
    while done < n + 1:
        reply = await r.xreadgroup("g", "c", {stream: ">"}, count=100)
        ids = [eid for eid, _ in reply[0][1]]
        await r.xack(stream, "g", *ids)
        done += len(ids)
    elapsed = time.perf_counter() - started
    await r.delete(stream)
    await r.aclose()
    return elapsed


def celery_run(url: str, n: int) -> float | str:
    python = VENVS / "celery" / "bin" / "python"
    if not python.exists():
        return "skipped: no Celery venv (run scripts/bench once to build it)"
    script = ROOT / "benchmarks" / "adapters" / "celery_chord.py"
    done = subprocess.run(
        [str(python), str(script), url, str(n), str(CONCURRENCY)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return f"failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def median(values: list[float]) -> float:
    return statistics.median(values)


async def run(n: int, repeat: int, celery: bool) -> dict[str, Any]:
    redis = PrivateRedis().start()
    rows: dict[str, list[float]] = {"ceiling": [], "strego plain": [], "strego chord": []}
    notes: dict[str, str] = {}
    try:
        for round_ in range(repeat):
            rows["ceiling"].append(await ceiling_run(redis.url, n))
            rows["strego plain"].append(await strego_run(redis.url, n, chord=False))
            rows["strego chord"].append(await strego_run(redis.url, n, chord=True))
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in rows.items()),
                  file=sys.stderr, flush=True)  # fmt: skip
            redis.flush()
            if celery and round_ == 0:  # minutes per run: once
                result = celery_run(redis.url, n)
                if isinstance(result, str):
                    notes["celery chord"] = result
                    celery = False
                else:
                    rows.setdefault("celery chord", []).append(result)
                redis.flush()
    finally:
        redis.server.stop()
    out: dict[str, Any] = {"n": n, "repeat": repeat, "concurrency": CONCURRENCY, "notes": notes}
    ceiling = median(rows["ceiling"])
    plain = median(rows["strego plain"])
    for name, values in rows.items():
        if values:
            m = median(values)
            out[name] = {
                "seconds": round(m, 3),
                "all": [round(v, 3) for v in values],
                "x ceiling": round(m / ceiling, 2),
                "vs strego plain": round(m / plain - 1, 3),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--worker"]:
        worker_main(args[1], args[2])
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workflows")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-celery", action="store_true")
    options = parser.parse_args(args)
    result = asyncio.run(run(options.n, options.repeat, not options.no_celery))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
