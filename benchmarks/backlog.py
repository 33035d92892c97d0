"""A million-task backlog (issue #21): enqueue, memory, pages, processing, dead letters.

    .venv/bin/python -m benchmarks.backlog [--tasks 1000000] [--process 200000]
                                           [--dead 100000] [--out FILE.json]

On a private redis-server, one step after the other:

1. ``Client.enqueue_many`` of ``--tasks`` no-op tasks (chunks of 5,000): the rate, and
   Redis ``used_memory`` per waiting task, with and without the task's payload bytes;
2. with the backlog waiting: ``strego ui`` (a subprocess) serving the dashboard, the
   queue page and the queues API, and ``Inspector.queues``/``queue_info`` directly, each
   timed 5 times (p50 and max ms);
3. one worker process (benchmarks/adapters/peer_strego.py, concurrency 10) processing
   the first ``--process`` tasks of the backlog, its RSS sampled every second; then the
   same worker on a fresh 20,000-task queue, the suite's ``processed_c10`` figure;
4. ``--dead`` dead letters (a handler that raises SkipRetry, ``dead_letter_max`` raised
   to hold them), then ``Inspector.retry_all_dead`` with a progress callback: its time
   and this process's RSS growth (bounded: it walks the dead set in chunks).

Prints a markdown report and writes JSON with ``--out``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

import strego
from benchmarks.procs import Adapter, Workers, rss_mb
from benchmarks.ui_paging import free_port, start_ui
from strego.embedded import EmbeddedRedis

QUEUE = "default"  # the queue peer_strego.py's worker serves
DEAD_QUEUE = "dead-letters"
GROUP = "bench"
PAYLOAD = {"ts": 0.0}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def self_rss_mb() -> float:
    return rss_mb(os.getpid())


async def used_memory(r: Any) -> int:
    return int((await r.info("memory"))["used_memory"])


async def enqueue_backlog(url: str, n: int, r: Any) -> dict[str, float]:
    await flush(r)
    before = await used_memory(r)
    started = time.perf_counter()
    async with strego.RedisBroker(url, group=GROUP) as broker:
        client = strego.Client(broker)
        for offset in range(0, n, 5000):
            size = min(5000, n - offset)
            await client.enqueue_many([strego.Task("noop", PAYLOAD) for _ in range(size)])
            if offset and offset % 200_000 == 0:
                log(f"  enqueued {offset:,}")
    elapsed = time.perf_counter() - started
    per_task = (await used_memory(r) - before) / n
    payload = len(json.dumps(PAYLOAD, separators=(",", ":")))
    return {
        "tasks": n,
        "enqueue_s": elapsed,
        "enqueue_per_s": n / elapsed,
        "redis_bytes_per_task": per_task,
        "payload_bytes": payload,
        "redis_bytes_per_task_less_payload": per_task - payload,
    }


async def flush(r: Any) -> None:
    """FLUSHALL ASYNC (a million tasks take seconds to free), then wait until freed."""
    await r.flushall(asynchronous=True)
    while int((await r.info("memory")).get("lazyfree_pending_objects", 0)):
        await asyncio.sleep(0.2)
    await r.execute_command("MEMORY", "PURGE")


async def timed(fn: Callable[[], Awaitable[Any]], times: int = 5) -> dict[str, float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "max_ms": max(samples)}


async def pages(url: str, n: int) -> dict[str, dict[str, float]]:
    """Dashboard, queue page and APIs with the backlog waiting; Inspector calls too."""
    found: dict[str, dict[str, float]] = {}
    async with strego.RedisBroker(url) as broker:
        inspector = strego.Inspector(broker)
        found["Inspector.queues()"] = await timed(inspector.queues)
        found["Inspector.queue_info()"] = await timed(lambda: inspector.queue_info(QUEUE))
        found["Inspector.list_page(pending)"] = await timed(
            lambda: inspector.list_page(QUEUE, "pending")
        )
    port = free_port()
    ui = start_ui(url, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(200):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)

            def get(path: str) -> Callable[[], Awaitable[Any]]:
                async def go() -> None:
                    response = await http.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {response.status_code}")

                return go

            for label, path in [
                ("UI dashboard /", "/"),
                (f"UI queue page /queues/{QUEUE}", f"/queues/{QUEUE}"),
                ("UI API /api/queues", "/api/queues"),
                (f"UI API /api/queues/{QUEUE}", f"/api/queues/{QUEUE}"),
                ("UI /metrics", "/metrics"),
            ]:
                await get(path)()  # warm: imports, templates, script loads
                found[label] = await timed(get(path))
    finally:
        ui.terminate()
        ui.wait(30)
    del n
    return found


def redis_usage(url: str) -> tuple[float, dict[str, float]]:
    """Redis CPU seconds so far, and usec per command since the last reset (then reset)."""
    import redis

    client = redis.Redis.from_url(url)
    cpu = client.info("cpu")
    usec = {
        k.removeprefix("cmdstat_"): float(v["usec"]) for k, v in client.info("commandstats").items()
    }
    client.config_resetstat()
    client.close()
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), usec


def process(url: str, n: int, logs: Path) -> dict[str, Any]:
    """One worker process (concurrency 10) runs ``n`` tasks off the waiting backlog."""
    adapter = Adapter(Path(sys.executable), "peer_strego.py", {}, logs)
    cpu_before, _ = redis_usage(url)
    samples: list[float] = []
    with Workers(adapter, f"backlog-{n}", url) as workers:
        workers.start(10)
        (pid,) = workers.pids()
        deadline = time.monotonic() + max(600.0, n / 500)
        while workers.processed() < n:
            workers.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {workers.processed()}/{n} tasks ran")
            if workers.processed() > 0:
                samples.append(rss_mb(pid))
            time.sleep(1.0)
        snapshot = workers.stats()[0]
        cpu_after, usec = redis_usage(url)
    wall = snapshot["last_done"] - snapshot["first_start"]
    count = int(snapshot["count"])
    warm = samples[len(samples) // 10 :] or samples  # after the first tenth
    return {
        "tasks": count,
        "tasks_per_s": count / wall,
        "rss_first_mb": samples[0] if samples else 0.0,
        "rss_warm_min_mb": min(warm, default=0.0),
        "rss_warm_max_mb": max(warm, default=0.0),
        "rss_last_mb": samples[-1] if samples else 0.0,
        "redis_cpu_us_per_task": (cpu_after - cpu_before) / count * 1e6,
        "redis_usec_per_task": {
            k: v / count for k, v in sorted(usec.items(), key=lambda kv: -kv[1])[:8]
        },
    }


async def dead_letters(url: str, n: int, r: Any) -> dict[str, float]:
    """``n`` dead letters made by a real worker, then retry_all_dead over all of them."""
    async with strego.RedisBroker(url, group=GROUP) as broker:
        client = strego.Client(broker)
        for offset in range(0, n, 5000):
            tasks = [
                strego.Task("fail", None, queue=DEAD_QUEUE, max_retry=0)
                for _ in range(min(5000, n - offset))
            ]
            await client.enqueue_many(tasks)
    worker_broker = strego.RedisBroker(url, group=GROUP)
    server = strego.Server(
        worker_broker, queues=[DEAD_QUEUE], concurrency=100, dead_letter_max=n + 1000
    )

    @server.handle("fail")
    async def fail(task: strego.Task) -> None:
        raise strego.SkipRetry("dead on purpose")

    started = time.perf_counter()
    await server.start()
    async with strego.RedisBroker(url) as broker:
        inspector = strego.Inspector(broker)
        while (await inspector.queue_info(DEAD_QUEUE)).dead < n:
            await asyncio.sleep(0.5)
        made_s = time.perf_counter() - started
        await server.stop()
        await worker_broker.aclose()
        await r.delete(f"strego:{{{DEAD_QUEUE}}}:stream:0")  # retried tasks: not run again
        rss_before = self_rss_mb()
        peak = rss_before
        calls = 0

        def progress(total: int) -> None:
            nonlocal peak, calls
            calls += 1
            peak = max(peak, self_rss_mb())

        started = time.perf_counter()
        moved = await inspector.retry_all_dead(DEAD_QUEUE, progress=progress)
        elapsed = time.perf_counter() - started
    return {
        "dead_letters": n,
        "made_s": made_s,
        "retry_all_dead_s": elapsed,
        "moved": moved,
        "moved_per_s": moved / elapsed,
        "progress_calls": calls,
        "rss_growth_mb": peak - rss_before,
    }


def report(doc: dict[str, Any]) -> str:
    e, p, base, d = doc["enqueue"], doc["process"], doc["process_20k"], doc["dead"]
    lines = [f"# strego backlog benchmark ({doc['started']}, {doc['tasks']:,} tasks)", ""]
    lines += [
        f"- load average at start {doc['loadavg_start']}, at end {doc['loadavg_end']}",
        "",
        "| what | figure |",
        "| --- | ---: |",
        f"| enqueue_many of {e['tasks']:,} | {e['enqueue_per_s']:,.0f} tasks/s "
        f"({e['enqueue_s']:.1f} s) |",
        f"| Redis memory per waiting task | {e['redis_bytes_per_task']:.0f} B "
        f"({e['redis_bytes_per_task_less_payload']:.0f} B + {e['payload_bytes']} B payload) |",
        f"| processing, first {p['tasks']:,} of the backlog (c10) | {p['tasks_per_s']:,.0f}/s |",
        f"| processing, 20,000-task queue (c10) | {base['tasks_per_s']:,.0f}/s "
        f"(backlog / 20k = {p['tasks_per_s'] / base['tasks_per_s']:.2f}x) |",
        f"| Redis CPU per task processed: backlog / 20k | {p['redis_cpu_us_per_task']:.1f} / "
        f"{base['redis_cpu_us_per_task']:.1f} us |",
        f"| worker RSS while processing the backlog | first {p['rss_first_mb']:.1f} MB, "
        f"warm {p['rss_warm_min_mb']:.1f}-{p['rss_warm_max_mb']:.1f} MB, "
        f"last {p['rss_last_mb']:.1f} MB |",
        f"| retry_all_dead of {d['dead_letters']:,} dead letters | {d['retry_all_dead_s']:.1f} s "
        f"({d['moved_per_s']:,.0f}/s, {d['progress_calls']} progress calls, caller RSS "
        f"+{d['rss_growth_mb']:.1f} MB) |",
    ]
    lines += ["", "| page or call, backlog waiting | p50 ms | max ms |", "| --- | ---: | ---: |"]
    for label, t in doc["pages"].items():
        lines.append(f"| {label} | {t['p50_ms']:.1f} | {t['max_ms']:.1f} |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    server = EmbeddedRedis().start()
    logs = Path(tempfile.mkdtemp(prefix="strego-backlog-"))
    doc: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tasks": args.tasks,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        r = aioredis.from_url(server.url, socket_timeout=None)
        log("20,000-task baseline")
        await enqueue_backlog(server.url, 20_000, r)
        doc["process_20k"] = await asyncio.to_thread(process, server.url, 20_000, logs)
        checkpoint(doc, args.out)
        log(f"enqueue_many of {args.tasks:,}")
        doc["enqueue"] = await enqueue_backlog(server.url, args.tasks, r)
        checkpoint(doc, args.out)
        log("pages with the backlog waiting")
        doc["pages"] = await pages(server.url, args.tasks)
        checkpoint(doc, args.out)
        log(f"processing {args.process:,} of the backlog")
        doc["process"] = await asyncio.to_thread(process, server.url, args.process, logs)
        await flush(r)
        checkpoint(doc, args.out)
        log(f"{args.dead:,} dead letters, then retry_all_dead")
        doc["dead"] = await dead_letters(server.url, args.dead, r)
        await r.aclose()
    finally:
        server.cleanup()
    doc["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return doc


def checkpoint(doc: dict[str, Any], out: Path | None) -> None:
    """Keep what is measured so far (``<out>.partial.json``): a late failure loses nothing."""
    if out is not None:
        out.with_suffix(".partial.json").write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--process", type=int, default=200_000)
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    doc = asyncio.run(main_async(args))
    text = report(doc)
    print(text)
    if args.out:
        args.out.with_suffix(".partial.json").unlink(missing_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
