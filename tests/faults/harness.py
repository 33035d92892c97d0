"""Driving real worker processes: start, SIGKILL, SIGSTOP, SIGTERM, and watch them.

Workers run ``python -m tests.faults.worker_app`` (a Server built from a JSON spec,
run by ``Server.run()``, which handles SIGTERM like ``strego worker``); each writes
its log to its own file, so a failing test can show what the workers said.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import redis.asyncio as aioredis

import strego
from strego.records import QueueInfo
from tests.faults.execlog import ExecLogReader
from tests.faults.worker_app import ENV, WorkerSpec

__all__ = ["Fleet", "WorkerProcess", "queue_info", "wait_all_done", "wait_ready", "wait_settled"]

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One worker process (one consumer name); may be restarted as a new process."""

    def __init__(self, spec: WorkerSpec, stderr_dir: Path) -> None:
        self.spec = spec
        self._stderr_dir = stderr_dir
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.generation = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, "worker not started"
        return self.process.pid

    @property
    def stderr_path(self) -> Path:
        return self._stderr_dir / f"{self.spec.consumer}.{self.generation}.log"

    def start(self) -> WorkerProcess:
        self.generation += 1
        self._stderr = self.stderr_path.open("wb")
        env = {**os.environ, ENV: self.spec.to_env(), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_app"],
            cwd=REPO,
            env=env,
            stdout=self._stderr,
            stderr=subprocess.STDOUT,
        )
        return self

    def restart(self, consumer: str | None = None) -> WorkerProcess:
        """Start a new process for this slot, under a new consumer name if given."""
        if consumer is not None:
            self.spec = dataclasses.replace(self.spec, consumer=consumer)
        return self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL and reap; return the pid that died."""
        pid = self.pid
        self.signal(signal.SIGKILL)
        self.wait(10)
        return pid

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit; return its exit code."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout_s)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return code

    async def wait_exit(self, timeout_s: float) -> int:
        """Async wait for exit (polls, so the test's event loop keeps running)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"worker {self.spec.consumer} still running after {timeout_s}s"
                )
            await asyncio.sleep(0.05)
        return self.wait(1)

    def output(self) -> str:
        """What the current process logged so far."""
        path = self.stderr_path
        return path.read_text(errors="replace") if path.exists() else ""


class Fleet:
    """The worker processes of one test; kills whatever is left at the end."""

    def __init__(self, base: WorkerSpec, directory: Path) -> None:
        self.base = base
        self.directory = directory
        self.exec_dir = Path(base.log_dir)
        self.exec_dir.mkdir(parents=True, exist_ok=True)
        self.workers: list[WorkerProcess] = []
        self.killed_pids: set[int] = set()

    def spawn(self, consumer: str, **overrides: Any) -> WorkerProcess:
        spec = dataclasses.replace(self.base, consumer=consumer, **overrides)
        worker = WorkerProcess(spec, self.directory).start()
        self.workers.append(worker)
        return worker

    def reader(self) -> ExecLogReader:
        return ExecLogReader(self.exec_dir)

    def kill(self, worker: WorkerProcess) -> int:
        pid = worker.kill()
        self.killed_pids.add(pid)
        return pid

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive()]

    def tails(self, lines: int = 15) -> str:
        """The last lines each worker logged: for assertion messages."""
        out = []
        for worker in self.workers:
            tail = worker.output().splitlines()[-lines:]
            out.append(f"--- {worker.spec.consumer} (gen {worker.generation})\n" + "\n".join(tail))
        return "\n".join(out)

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.signal(signal.SIGCONT)  # a stopped process ignores SIGKILL until run
                worker.kill()


async def wait_ready(
    redis_url: str, prefix: str, consumers: Iterable[str], timeout_s: float = 30
) -> None:
    """Wait until each named worker has registered its heartbeat in Redis."""
    names = list(consumers)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [await redis.exists(f"{prefix}:worker:{name}") for name in names]
            if all(found):
                return
            if time.monotonic() > deadline:
                missing = [n for n, ok in zip(names, found, strict=True) if not ok]
                raise AssertionError(f"workers not ready after {timeout_s}s: {missing}")
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


async def wait_all_done(
    reader: ExecLogReader,
    task_ids: Iterable[str],
    timeout_s: float,
    fleet: Fleet | None = None,
    poll_s: float = 0.2,
) -> float:
    """Poll the execution log until every id finished at least once; return seconds taken."""
    wanted = set(task_ids)
    started = time.monotonic()
    while True:
        reader.poll()
        missing = wanted - reader.done.keys()
        if not missing:
            return time.monotonic() - started
        dead_fleet = fleet is not None and not fleet.alive()
        if dead_fleet or time.monotonic() - started > timeout_s:
            sample = sorted(missing)[:5]
            tails = fleet.tails() if fleet else ""
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} tasks never ran within {timeout_s}s "
                f"{'(every worker exited) ' if dead_fleet else ''}"
                f"(e.g. {sample})\n{tails}"
            )
        await asyncio.sleep(poll_s)


async def queue_info(redis_url: str, prefix: str, queue: str = "default") -> QueueInfo:
    """What the Inspector says about ``queue`` right now."""
    async with strego.RedisBroker(redis_url, prefix=prefix, group="faults") as broker:
        return await strego.Inspector(broker).queue_info(queue)


async def wait_settled(
    redis_url: str, prefix: str, processed: int, queue: str = "default", timeout_s: float = 30
) -> QueueInfo:
    """Wait until nothing is waiting or running and ``processed`` acks are counted."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = await queue_info(redis_url, prefix, queue)
        if info.size == 0 and info.processed >= processed:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not settled after {timeout_s}s: {info}")
        await asyncio.sleep(0.2)


class Producer:
    """Enqueues a small batch every ``every_s`` in the background while faults happen.

    ``ok`` holds the ids whose enqueue returned (they must all run); ``unknown`` the ids
    of batches whose enqueue raised (they may or may not have reached Redis);
    ``failures`` the (seconds taken, error) of each enqueue that raised.
    """

    def __init__(
        self, client: strego.Client, *, batch: int = 10, every_s: float = 0.05, sleep: float = 0.02
    ) -> None:
        self._client = client
        self._batch = batch
        self._every_s = every_s
        self._sleep = sleep
        self.ok: list[str] = []
        self.unknown: list[str] = []
        self.failures: list[tuple[float, str]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Producer:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            tasks = [strego.Task("work", {"sleep": self._sleep}) for _ in range(self._batch)]
            began = time.monotonic()
            try:
                await self._client.enqueue_many(tasks)
            except strego.StregoError as exc:
                self.failures.append((time.monotonic() - began, type(exc).__name__))
                self.unknown.extend(t.id for t in tasks)
            else:
                self.ok.extend(t.id for t in tasks)
            await asyncio.sleep(self._every_s)
