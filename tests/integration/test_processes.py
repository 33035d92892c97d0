"""Real worker processes: SIGKILL mid-task loses nothing; SIGTERM finishes what runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import strego
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spawn(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "executions.log"
    log.touch()

    def start(sleep_s: float, via_cli: bool = False) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "STREGO_REDIS_URL": redis_url,
            "STREGO_PREFIX": prefix,
            "WORKER_LOG": str(log),
            "WORKER_SLEEP": str(sleep_s),
        }
        command = ["-m", "tests.integration.worker_app"]
        if via_cli:  # the `strego worker module:attribute` command
            command = ["-m", "strego.cli.main", "worker", "tests.integration.worker_app:build"]
        proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        return proc

    start.log = log  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def lines(log: Path, kind: str) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines() if line.startswith(kind)]


async def test_sigkill_mid_task_then_another_worker_finishes(
    spawn: object, client: strego.Client
) -> None:
    """A worker SIGKILLed while running a task: a second worker completes that task."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    victim = spawn(5.0)  # type: ignore[operator]
    info = await client.enqueue(strego.Task("work"))
    await wait_until(lambda: lines(log, "start") == [info.id], timeout=15)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    spawn(0.0)  # type: ignore[operator]
    await wait_until(lambda: info.id in lines(log, "done"), timeout=20)
    assert lines(log, "done") == [info.id]


async def test_sigterm_lets_running_handler_finish(
    spawn: object, client: strego.Client, inspector: strego.Inspector
) -> None:
    """SIGTERM during a running handler (strego worker CLI): it finishes, lands, exit 0."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    proc = spawn(1.0, via_cli=True)  # type: ignore[operator]
    info = await client.enqueue(strego.Task("work"))
    await wait_until(lambda: lines(log, "start") == [info.id], timeout=15)
    proc.send_signal(signal.SIGTERM)
    assert await _wait_exit(proc) == 0
    assert lines(log, "done") == [info.id]
    record = await inspector.get_task(info.id)
    assert record is not None and record.state == "completed"


async def _wait_exit(proc: subprocess.Popen[bytes]) -> int:
    await wait_until(lambda: proc.poll() is not None, timeout=20)
    return proc.returncode


async def test_sigkill_of_an_idle_worker_strands_nothing(
    spawn: object, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """An idle worker SIGKILLed while registered for a hand-off (handoff.py): a task
    enqueued right after is handed to the dead worker, which holds it like any delivery
    it took; a live worker reclaims it after claim_stale_after (1 s here) and runs it
    once. Tasks enqueued after the registration lapsed go to the live worker directly."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    victim = spawn(0.0)  # type: ignore[operator]
    key = broker.keys("default").handoff
    await wait_until(lambda: broker.redis.hlen(key), timeout=15)  # registered
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    stranded = await client.enqueue(strego.Task("work"))
    spawn(0.0)  # type: ignore[operator]
    await wait_until(lambda: stranded.id in lines(log, "done"), timeout=20)
    later = await client.enqueue(strego.Task("work"))
    await wait_until(lambda: later.id in lines(log, "done"), timeout=10)
    assert sorted(lines(log, "start")) == sorted([stranded.id, later.id])
