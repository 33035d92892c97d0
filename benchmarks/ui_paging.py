"""What reading a 1 M-task queue through the UI costs the UI and Redis (issue #19).

    .venv/bin/python -m benchmarks.ui_paging [--tasks 1000000] [--big-payloads 3]

Starts a private redis-server, fills queue ``big`` with ``--tasks`` pending tasks
(about 100-byte payloads) plus ``--big-payloads`` scheduled tasks of 20 MB each, runs
``strego ui`` as a subprocess on a free port, then requests, one after the other:

- the first page of pending tasks (API, HTML);
- a deep page: ``offset=tasks-50`` (what the API used to accept; now a 400) and the
  last page (``cursor=last``, the HTML "Last" link);
- 4 concurrent last-page requests;
- the scheduled list (holding the 20 MB payloads) and one big task.

For each it prints the wall time per request, the response size, Redis' SLOWLOG over
that request (commands slower than 1 ms: count, max, sum: the time Redis was blocked)
and the UI process' RSS (current, and peak via VmHWM). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psutil
import redis.asyncio as aioredis

import strego
from strego.embedded import EmbeddedRedis

QUEUE = "big"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def fill(url: str, tasks: int, big: int) -> None:
    started = time.monotonic()
    async with strego.RedisBroker(url) as broker:
        client = strego.Client(broker)
        for start in range(0, tasks, 5000):
            size = min(5000, tasks - start)
            batch = [
                strego.Task("bench:noop", {"n": start + i, "pad": "x" * 80}, queue=QUEUE)
                for i in range(size)
            ]
            await client.enqueue_many(batch)
        blob = os.urandom(20 << 20)
        for _ in range(big):
            await client.enqueue(strego.Task("bench:big", blob, queue=QUEUE, process_in=3600))
    print(f"filled {tasks:,} tasks in {time.monotonic() - started:.1f}s", flush=True)


def start_ui(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "strego.cli.main", "ui", "--redis", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of ``pid`` in MB."""
    current = psutil.Process(pid).memory_info().rss / 1e6
    peak = current
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1e3
    return current, peak


async def slowlog(r: Any) -> tuple[int, float, float]:
    """(entries, max ms, total ms) of the SLOWLOG since the last reset; then reset."""
    entries = await r.slowlog_get(1000)
    await r.slowlog_reset()
    durations = [e["duration"] / 1000 for e in entries]
    return len(durations), max(durations, default=0.0), sum(durations)


async def measure(
    label: str,
    request: Callable[[], Awaitable[list[httpx.Response]]],
    r: Any,
    pid: int,
) -> None:
    await r.slowlog_reset()
    started = time.monotonic()
    responses = await request()
    elapsed = (time.monotonic() - started) * 1000
    count, longest, blocked = await slowlog(r)
    rss, peak = rss_mb(pid)
    sizes = "/".join(f"{len(x.content) / 1e6:.2f}" for x in responses[:1])
    statuses = ",".join(sorted({str(x.status_code) for x in responses}))
    print(
        f"| {label} | {statuses} | {elapsed:,.0f} | {sizes} | {count} | {longest:.1f} | "
        f"{blocked:.1f} | {rss:.0f} | {peak:.0f} |",
        flush=True,
    )


async def main_async(args: argparse.Namespace) -> None:
    server = EmbeddedRedis().start()
    ui = None
    try:
        r = aioredis.from_url(server.url)
        await r.config_set("slowlog-log-slower-than", 1000)  # µs: log commands over 1 ms
        await r.config_set("slowlog-max-len", 1000)
        await fill(server.url, args.tasks, args.big_payloads)
        port = free_port()
        ui = start_ui(server.url, port)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(100):
                try:
                    await http.get("/api/queues")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            await run_requests(http, r, ui.pid, args.tasks)
        await r.aclose()
    finally:
        if ui is not None:
            ui.terminate()
            ui.wait(30)
        server.cleanup()


async def run_requests(http: httpx.AsyncClient, r: Any, pid: int, tasks: int) -> None:
    api = f"/api/queues/{QUEUE}/tasks"
    deep = tasks - 50

    def one(path: str) -> Callable[[], Awaitable[list[httpx.Response]]]:
        async def go() -> list[httpx.Response]:
            return [await http.get(path)]

        return go

    def many(path: str, n: int) -> Callable[[], Awaitable[list[httpx.Response]]]:
        async def go() -> list[httpx.Response]:
            return list(await asyncio.gather(*(http.get(path) for _ in range(n))))

        return go

    print("| request | status | ms | MB | slowlog n | max ms | blocked ms | RSS MB | peak MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    pending = f"{api}?state=pending"
    html = f"/queues/{QUEUE}"
    steps = [
        ("API pending, first page", one(f"{pending}&limit=50")),
        ("HTML pending, first page", one(html)),
        (f"API offset={deep:,}", one(f"{pending}&offset={deep}&limit=50")),
        ("API cursor=last", one(f"{pending}&cursor=last&limit=50")),
        ("HTML last page (old link: page=N)", one(f"{html}?state=pending&page={tasks // 25}")),
        ("HTML last page (cursor=last)", one(f"{html}?state=pending&cursor=last")),
        (f"4 x API offset={deep:,} limit=500", many(f"{pending}&offset={deep}&limit=500", 4)),
        ("4 x API cursor=last limit=500", many(f"{pending}&cursor=last&limit=500", 4)),
        ("API scheduled (20 MB payloads)", one(f"{api}?state=scheduled")),
        ("HTML scheduled (20 MB payloads)", one(f"{html}?state=scheduled")),
    ]
    for label, request in steps:
        await measure(label, request, r, pid)
    listing = (await http.get(f"{api}?state=scheduled")).json()
    if listing.get("tasks"):
        task_id = listing["tasks"][0]["id"]
        await measure("API one 20 MB task", one(f"/api/tasks/{task_id}"), r, pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--big-payloads", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
