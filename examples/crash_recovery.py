"""Crash recovery: kill a worker mid-task and watch another worker finish it.

    python examples/crash_recovery.py

Worker A (a child process) starts a long task and is killed with SIGKILL: no
cleanup, no goodbye. Its task stays in Redis, pending for a consumer that is gone.
Worker B notices the lease went stale (``claim_stale_after``) and reclaims it.
While a worker lives it renews its leases, so a slow task is never stolen from a
live worker, however long it runs.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from _redis import redis_url

import strego

GROUP = "example-crash"
# Short so the example is quick; the defaults are 300 s and 30 s.
CLAIM_STALE_AFTER_S = 2.0
CLAIM_CHECK_INTERVAL_S = 0.5


def build_server(url: str, name: str) -> strego.Server:
    broker = strego.RedisBroker(
        url,
        group=GROUP,
        consumer=f"worker-{name}",
        claim_stale_after=CLAIM_STALE_AFTER_S,
        claim_check_interval=CLAIM_CHECK_INTERVAL_S,
    )
    server = strego.Server(broker)

    @server.handle("video:encode")
    async def encode(video: str, task: strego.Task) -> None:
        print(f"[worker {name}] encoding {video} (task {task.id})", flush=True)
        await asyncio.sleep(1.5)
        print(f"[worker {name}] finished {video}", flush=True)

    return server


def run_worker(url: str, name: str) -> None:
    """Entry point of the child process: a worker until it is killed."""
    build_server(url, name).run()


async def wait_for(inspector: strego.Inspector, task_id: str, state: str) -> strego.TaskRecord:
    while (record := await inspector.get_task(task_id)) is None or record.state != state:
        await asyncio.sleep(0.05)
    return record


async def main(url: str) -> None:
    async with strego.RedisBroker(url, group=GROUP) as broker:
        inspector = strego.Inspector(broker)
        info = await strego.Client(broker).enqueue(strego.Task("video:encode", "holiday.mp4"))
        print(f"enqueued {info.id}")

        worker_a = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", url, "A"
        )
        record = await wait_for(inspector, info.id, "active")
        print(f"task is active on {record.worker}; killing worker A with SIGKILL")
        worker_a.send_signal(signal.SIGKILL)
        await worker_a.wait()
        killed_at = time.monotonic()

        worker_b = build_server(url, "B")
        async with worker_b:
            record = await wait_for(inspector, info.id, "completed")
        took = time.monotonic() - killed_at
        print(f"task completed by {record.worker} {took:.1f} s after the crash")
        await worker_b.broker.aclose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        run_worker(sys.argv[2], sys.argv[3])
    else:
        with redis_url() as url:
            asyncio.run(main(url))
