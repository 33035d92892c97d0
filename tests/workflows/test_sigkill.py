"""A chord of 200 while a random worker process is SIGKILLed every second: the
callback is released exactly once and receives the 200 results in order.
STREGO_SOAK=1 repeats it 10 times."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import strego

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 200
ROUNDS = 10 if os.environ.get("STREGO_SOAK") == "1" else 1


@pytest.fixture
def spawn(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "executions.log"
    log.touch()

    def start() -> subprocess.Popen[bytes]:
        env = {**os.environ, "STREGO_REDIS_URL": redis_url, "STREGO_PREFIX": prefix,
               "WORKER_LOG": str(log)}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.workflows.flow_worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    start.log = log  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def registered(
    broker: strego.RedisBroker, workers: list[subprocess.Popen[bytes]]
) -> list[int]:
    """Indexes of the workers whose consumer name (host-pid-random) is registered."""
    names = [m.decode() for m in await broker.redis.zrange(broker.global_keys.workers, 0, -1)]
    return [i for i, w in enumerate(workers) if any(f"-{w.pid}-" in n for n in names)]


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.timeout(600)
async def test_chord_of_200_fires_once_under_sigkill(
    spawn: object, client: strego.Client, broker: strego.RedisBroker, round_: int
) -> None:
    """Workers SIGKILLed every second (between acks and releases too): the callback is
    released exactly once, with the 200 results in the group's order."""
    log: Path = spawn.log  # type: ignore[attr-defined]
    workers = [spawn() for _ in range(3)]  # type: ignore[operator]
    flow = strego.chord([strego.Task("member", n) for n in range(MEMBERS)], strego.Task("callback"))
    info = await client.enqueue(flow)
    outcome = asyncio.create_task(client.result(info.id, timeout=400))
    rng = random.Random(round_)
    kills = 0
    while not outcome.done():
        await asyncio.wait({outcome}, timeout=1.0)
        if outcome.done():
            break
        # A worker that has started (registered): on a loaded machine a new process
        # takes seconds to start, and killing only those would stall everything.
        live = await registered(broker, workers)
        if not live:
            continue
        victim = rng.choice(live)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        kills += 1
        workers[victim] = spawn()  # type: ignore[operator]
    assert await outcome == list(range(MEMBERS))
    callback_id = info.task_ids[-1]
    runs = [line.split() for line in log.read_text().splitlines()]  # noqa: ASYNC240
    assert {r[1] for r in runs} == {callback_id}  # only this callback, with all results
    assert all(r[2] == str(MEMBERS) for r in runs)
    flow_key = broker.keys("default").flow(info.id)
    # Every task released exactly once (a second release would count again).
    assert await broker.redis.hget(flow_key, "released") == str(MEMBERS + 1).encode()
    assert await broker.redis.hget(flow_key, f"s:{callback_id}") == b"r"
    assert kills >= 1
