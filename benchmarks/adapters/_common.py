"""What every adapter shares: the command line, the drivers and the in-worker recorder.

Adapters run under their peer's own venv, so this module uses the standard library only.
One adapter = one ``Adapter`` object; ``main(adapter)`` turns it into a small CLI:

    python peer_x.py enqueue  --url U --n N --mode single|bulk [--batch B]
    python peer_x.py latency  --url U --n N --stats-dir D
    python peer_x.py schedule --url U --n N --stats-dir D
    python peer_x.py rtt      --url U --n N   (enqueue -> result round trips; needs a worker
                                              started with BENCH_RESULTS=1)
    python peer_x.py work     --url U --concurrency C --stats FILE [--interval S]
    python peer_x.py version

Drivers print one JSON line on stdout. A worker never returns: the harness stops it.
Handlers call ``RECORDER.start(ts)`` first and ``RECORDER.done()`` last; a reporter
thread writes the counts and timestamps to the worker's stats file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

__all__ = ["RECORDER", "Adapter", "Recorder", "arg", "handle_async", "handle_sync", "main"]

# What a handler does (the worker's environment, set by the harness for the real-work
# workloads): "noop", "sleep_sync" (time.sleep, the stand-in for blocking I/O in a sync
# handler) or "sleep_async" (await asyncio.sleep, the stand-in for awaited I/O).
HANDLER = os.environ.get("BENCH_HANDLER", "noop")
SLEEP_S = float(os.environ.get("BENCH_SLEEP_S", "0.01"))
# Bytes of padding every enqueued task carries (``--payload-bytes``; drivers only).
PAYLOAD = ""


class Adapter(Protocol):
    """One queue library, seen through the few operations every workload needs."""

    def version(self) -> str: ...

    async def open(self, url: str) -> None: ...

    async def close(self) -> None: ...

    async def enqueue_one(self, ts: float) -> None:
        """Enqueue one no-op task carrying ``ts`` (a time.time() stamp, or 0)."""

    async def enqueue_batch(self, stamps: list[float]) -> None:
        """Enqueue ``len(stamps)`` no-op tasks with the library's fastest bulk path."""

    def work(self, url: str, concurrency: int) -> None:
        """Run one worker in this process until killed."""


class Recorder:
    """Counts handler runs in a worker process and publishes them to a JSON file.

    Thread-safe: thread-pool workers (Celery, Dramatiq) call it from many threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.first_start: float | None = None
        self.last_done: float | None = None
        # This process's CPU seconds (every thread) at the first start and the last done:
        # the worker's own CPU per task, start-up excluded.
        self.cpu_first: float | None = None
        self.cpu_last: float | None = None
        self.lags: list[float] = []

    def start(self, ts: float) -> None:
        now = time.time()
        with self._lock:
            if self.first_start is None:
                self.first_start = now
                self.cpu_first = time.process_time()
            if ts:
                self.lags.append(now - ts)

    def done(self) -> None:
        now = time.time()
        with self._lock:
            self.count += 1
            self.last_done = now
            self.cpu_last = time.process_time()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": os.getpid(),
                "count": self.count,
                "first_start": self.first_start,
                "last_done": self.last_done,
                "cpu_first": self.cpu_first,
                "cpu_last": self.cpu_last,
                "lags": list(self.lags),
            }

    def publish_forever(self, path: Path, interval_s: float) -> None:
        """Start a daemon thread that rewrites ``path`` whenever the count changes."""

        def loop() -> None:
            written = -1
            while True:
                if self.count != written:
                    written = self.count
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(self.snapshot()))
                    os.replace(tmp, path)
                time.sleep(interval_s)

        threading.Thread(target=loop, name="bench-recorder", daemon=True).start()


RECORDER = Recorder()


def arg(ts: float) -> Any:
    """The one argument a peer's no-op task is enqueued with: the stamp, plus the
    payload padding as ``"<ts>|<padding>"`` when the workload asks for a payload."""
    return f"{ts!r}|{PAYLOAD}" if PAYLOAD else ts


def stamp(value: Any) -> float:
    """The stamp carried by :func:`arg`'s value."""
    if isinstance(value, str):
        return float(value.split("|", 1)[0])
    return float(value)


def handle_sync(value: Any = 0.0) -> None:
    """A sync handler's body: record, do the workload's work, record."""
    RECORDER.start(stamp(value))
    if HANDLER == "sleep_sync":
        time.sleep(SLEEP_S)
    RECORDER.done()


async def handle_async(value: Any = 0.0) -> None:
    """An async handler's body: record, do the workload's work, record."""
    RECORDER.start(stamp(value))
    if HANDLER == "sleep_async":
        await asyncio.sleep(SLEEP_S)
    elif HANDLER == "sleep_sync":  # an async-only library: the harness never asks this
        raise RuntimeError("sleep_sync needs a sync handler")
    RECORDER.done()


def read_stats(stats_dir: Path) -> list[dict[str, Any]]:
    """Every worker's last published snapshot in ``stats_dir``."""
    found = []
    for path in sorted(stats_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(path.read_text()))
    return found


def processed(stats_dir: Path) -> int:
    return sum(int(s["count"]) for s in read_stats(stats_dir))


async def wait_processed(stats_dir: Path, target: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while processed(stats_dir) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {processed(stats_dir)}/{target} tasks ran in {timeout_s}s")
        await asyncio.sleep(0.002)


async def drive_enqueue(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``n`` enqueues: sequential awaits (single) or batches (bulk)."""
    started = time.perf_counter()
    if args.mode == "single":
        for _ in range(args.n):
            await adapter.enqueue_one(0.0)
    else:
        for offset in range(0, args.n, args.batch):
            await adapter.enqueue_batch([0.0] * min(args.batch, args.n - offset))
    return {"n": args.n, "elapsed_s": time.perf_counter() - started}


async def drive_latency(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """One task at a time on an idle worker; the worker records start - enqueue stamp."""
    stats_dir = Path(args.stats_dir)
    warmup = 5
    for i in range(warmup):  # untimed (ts=0): connections warm, worker proven alive
        await adapter.enqueue_one(0.0)
        await wait_processed(stats_dir, i + 1, args.warmup_timeout)
    for i in range(args.n):
        await adapter.enqueue_one(time.time())
        await wait_processed(stats_dir, warmup + i + 1, args.task_timeout)
        await asyncio.sleep(args.gap)  # the worker goes back to its idle wait (poll back-off)
    return {"n": args.n}


async def drive_schedule(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Schedule ``n`` tasks due over a few seconds; the worker records start - due."""
    enqueue_at: Callable[[float], Awaitable[None]] | None = getattr(adapter, "enqueue_at", None)
    if enqueue_at is None:
        raise NotImplementedError("this adapter has no scheduled enqueue")
    stats_dir = Path(args.stats_dir)
    await adapter.enqueue_one(0.0)
    await wait_processed(stats_dir, 1, args.warmup_timeout)
    base = time.time() + args.lead
    for i in range(args.n):
        await enqueue_at(base + i * args.spacing)
    await wait_processed(stats_dir, 1 + args.n, args.lead + args.n * args.spacing + 30)
    return {"n": args.n}


async def drive_rtt(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue a task that returns a value, await its result: ``n`` sequential round trips
    on an idle worker, each timed with perf_counter (after 10 untimed warm-ups)."""
    round_trip: Callable[[], Awaitable[Any]] | None = getattr(adapter, "round_trip", None)
    if round_trip is None:
        raise NotImplementedError("this adapter has no result round trip")
    for _ in range(10):
        await round_trip()
    samples = []
    for _ in range(args.n):
        started = time.perf_counter()
        value = await round_trip()
        samples.append(time.perf_counter() - started)
        if value != 42:
            raise RuntimeError(f"wrong result {value!r}")
        await asyncio.sleep(args.gap)  # idle between tasks, as in the latency workload
    return {"n": args.n, "samples": samples}


DRIVERS: dict[str, Callable[[Adapter, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "enqueue": drive_enqueue,
    "latency": drive_latency,
    "schedule": drive_schedule,
    "rtt": drive_rtt,
}


async def _drive(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await adapter.open(args.url)
    try:
        return await DRIVERS[args.role](adapter, args)
    finally:
        await adapter.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=[*DRIVERS, "work", "version"])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--mode", choices=["single", "bulk"], default="single")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--stats", default="")
    parser.add_argument("--stats-dir", default="")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--warmup-timeout", type=float, default=60.0)
    parser.add_argument("--task-timeout", type=float, default=10.0)
    parser.add_argument("--gap", type=float, default=0.05)
    parser.add_argument("--lead", type=float, default=1.5)
    parser.add_argument("--spacing", type=float, default=0.02)
    parser.add_argument("--payload-bytes", type=int, default=0)
    return parser.parse_args(argv)


def main(adapter: Adapter) -> None:
    global PAYLOAD
    args = parse_args()
    PAYLOAD = "x" * args.payload_bytes
    if args.role == "version":
        print(json.dumps({"version": adapter.version()}))
    elif args.role == "work":
        RECORDER.publish_forever(Path(args.stats), args.interval)
        adapter.work(args.url, args.concurrency)
    else:
        print(json.dumps(asyncio.run(_drive(adapter, args))), flush=True)


def dist_version(*names: str) -> str:
    """``name version`` for each installed distribution, for the report."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (source tree)")
    return ", ".join(found)
