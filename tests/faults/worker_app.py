"""The worker the fault tests run as real processes: ``strego worker
tests.faults.worker_app:build_server``, configured by one JSON env variable.

Handlers record into the execution log (see :mod:`tests.faults.execlog`), which lives
outside Redis, so a test can compare what really ran with what Redis claims.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import strego
from tests.faults.execlog import DONE, INTERRUPTED, STARTED, ExecLog

__all__ = ["ENV", "WorkerSpec", "build_server"]

ENV = "STREGO_FAULTS_WORKER"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSpec:
    """Everything a fault-test worker process needs; travels as JSON in ``ENV``."""

    redis_url: str
    prefix: str
    log_dir: str
    consumer: str
    group: str = "faults"
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10
    claim_stale_after: float = 300.0
    claim_check_interval: float = 30.0
    socket_timeout: float = 5.0
    block: float = 5.0
    shutdown_timeout: float = 30.0
    processed_ttl: float = 86400.0
    keep_completed: int = 1000
    max_deliveries: int = 10
    fsync: bool = True
    log_starts: bool = False
    clock_skew_s: float = 0.0  # shift this process's wall clock (time.time, datetime.now)

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> WorkerSpec:
        raw = json.loads(os.environ[ENV])
        raw["queues"] = tuple(raw["queues"])
        return cls(**raw)


def build_server() -> strego.Server:
    """Build the Server the CLI runs (called by ``strego worker``)."""
    spec = WorkerSpec.from_env()
    if spec.clock_skew_s:
        from tests.faults.skew import skew_clock

        skew_clock(spec.clock_skew_s)
    broker = strego.RedisBroker(
        spec.redis_url,
        group=spec.group,
        consumer=spec.consumer,
        prefix=spec.prefix,
        block=spec.block,
        claim_stale_after=spec.claim_stale_after,
        claim_check_interval=spec.claim_check_interval,
        socket_timeout=spec.socket_timeout,
    )
    server = strego.Server(
        broker,
        queues=spec.queues,
        concurrency=spec.concurrency,
        shutdown_timeout=spec.shutdown_timeout,
        processed_ttl=spec.processed_ttl,
        keep_completed=spec.keep_completed,
        max_deliveries=spec.max_deliveries,
        cleanup_interval=None,
    )
    _register(server, ExecLog(spec.log_dir, fsync=spec.fsync), spec.log_starts)
    return server


def _register(server: strego.Server, log: ExecLog, log_starts: bool) -> None:
    def record(event: str, task: strego.Task) -> None:
        log.write(event, task.id, task.retry_count)

    @server.handle("work")
    async def work(payload: dict[str, Any], task: strego.Task) -> None:
        """Sleep ``payload["sleep"]`` seconds (on the event loop), then log done."""
        if log_starts:
            record(STARTED, task)
        await asyncio.sleep(float(payload.get("sleep", 0.0)))
        record(DONE, task)

    @server.handle("sync_work")
    def sync_work(payload: dict[str, Any], task: strego.Task) -> None:
        """The same, in the worker's thread pool."""
        if log_starts:
            record(STARTED, task)
        time.sleep(float(payload.get("sleep", 0.0)))
        record(DONE, task)

    def broken_policy(task: strego.Task, retry_number: int, exc: BaseException) -> float:
        raise RuntimeError("bug in the retry policy")

    async def fails(payload: dict[str, Any], task: strego.Task) -> None:
        """Fails, and its retry policy fails too: an error inside the worker itself."""
        record(DONE, task)
        raise ValueError("handler failed")

    server.handle("broken_policy", fails, retry_policy=broken_policy)

    @server.handle("crash")
    async def crash(payload: dict[str, Any], task: strego.Task) -> None:
        """Kills its worker process outright (a segfault, the OOM killer): a poison task."""
        record(STARTED, task)
        os._exit(1)

    _register_gate(server, record)

    @server.handle("blob")
    async def blob(payload: bytes, task: strego.Task) -> None:
        """Raw bytes (the oversized-payload test): log done with the size seen."""
        if len(payload) != int(task.labels.get("size", len(payload))):
            raise strego.SkipRetry(f"payload truncated: {len(payload)} bytes")
        record(DONE, task)


def _register_gate(server: strego.Server, record: Callable[[str, strego.Task], None]) -> None:
    async def gate(payload: dict[str, Any], task: strego.Task) -> None:
        """Runs until the test opens its gate: the file ``<payload["gate"]>/<task id>``.

        Its content decides the end: ``ok`` finishes, ``fail`` raises (retried after
        0.2 s while retries last). Interruptions are logged too (``X``), so the model
        test knows exactly when each run of a task began and ended.
        """
        record(STARTED, task)
        path = Path(payload["gate"]) / task.id
        try:
            while not path.exists():
                await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            record(INTERRUPTED, task)
            raise
        record(DONE, task)
        if path.read_text().strip() == "fail":
            raise RuntimeError("the gate said fail")

    server.handle("gate", gate, retry_policy=lambda task, number, exc: 0.2)


def main() -> int:
    """Run one worker until SIGTERM/SIGINT (graceful), like ``strego worker`` does.

    The tests start this module rather than the ``strego`` CLI so that they depend on
    the library only (``Server.run()`` owns the signals), not on every CLI command.
    """
    from strego.logs import configure_logging

    configure_logging("INFO")
    build_server().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
