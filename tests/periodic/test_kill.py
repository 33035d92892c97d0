"""Four real worker processes, one SIGKILLed and restarted every 5 s for a minute: every
tick of an every-second schedule fires exactly once, and none is missing."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import strego
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
Starter = Callable[..., subprocess.Popen[bytes]]
RUN_S = 60.0
KILL_EVERY_S = 5.0


@pytest.fixture
def workers(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[Starter, Path]]:
    log = tmp_path / "runs.log"
    log.touch()
    env = {**os.environ, "STREGO_REDIS_URL": redis_url, "STREGO_PREFIX": prefix,
           "WORKER_LOG": str(log)}  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []

    def start(skew_s: float = 0.0) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.periodic.periodic_app"],
            cwd=ROOT,
            env={**env, "SKEW_S": str(skew_s)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start, log
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.timeout(240)
async def test_sigkill_every_5s_never_duplicates_or_skips_a_tick(
    workers: tuple[Starter, Path], broker: strego.RedisBroker
) -> None:
    """4 workers, every=1, ~60 s, a random one SIGKILLed and restarted every 5 s:
    one task per tick (the enqueue counter equals the distinct ticks), no gap over 2 s."""
    start, log = workers
    live = [start() for _ in range(4)]
    await wait_until(lambda: log.read_text().strip(), timeout=60)  # imports: slow when busy
    rng = random.Random(14)
    loop = asyncio.get_running_loop()
    end = loop.time() + RUN_S
    kills = 0
    while loop.time() < end:
        await asyncio.sleep(KILL_EVERY_S)  # the chaos schedule, not synchronisation
        victim = live.pop(rng.randrange(len(live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        live.append(start())
    for proc in live:  # graceful: what was fired gets run
        proc.send_signal(signal.SIGTERM)
    for proc in live:
        await asyncio.to_thread(proc.wait, 30)
    stats = broker.keys("default").stats
    enqueued = int(await broker.redis.hget(stats, "enqueued") or 0)
    # Runs a kill cut off are reclaimed by the next worker; one more worker finishes them.
    finisher = start()
    await wait_until(lambda: _ran_all(broker, enqueued), timeout=60)
    finisher.send_signal(signal.SIGTERM)
    ids = {line.split()[0] for line in log.read_text().splitlines()}
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    assert kills >= 10
    assert len(ticks) >= RUN_S - 5
    assert enqueued == len(ticks), "a tick was enqueued twice (or a run never ran)"
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) <= 2000, f"gap of {max(gaps)} ms"
    assert all(t % 1000 == 0 for t in ticks)


async def _ran_all(broker: strego.RedisBroker, enqueued: int) -> bool:
    processed = await broker.redis.hget(broker.keys("default").stats, "processed")
    return int(processed or 0) >= enqueued


async def test_skewed_worker_clocks_neither_double_fire_nor_fire_early(
    workers: tuple[Starter, Path], broker: strego.RedisBroker
) -> None:
    """Three workers whose clocks disagree by a minute (-30 s, 0, +30 s): each tick runs
    once, and never before Redis' clock reaches it."""
    start, log = workers
    procs = [start(skew) for skew in (-30.0, 0.0, 30.0)]
    await wait_until(lambda: len(log.read_text().splitlines()) >= 4, timeout=60)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        await asyncio.to_thread(proc.wait, 30)
    seconds, _ = await broker.redis.time()
    # Every run enqueued (ran or not yet: a SIGTERM may land between fire and fetch) is
    # in the index: the last keep_completed (1000) finished ones and all waiting ones.
    ids = [i.decode() for i in await broker.redis.hkeys(broker.keys("default").index)]
    ticks = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    enqueued = int(await broker.redis.hget(broker.keys("default").stats, "enqueued") or 0)
    assert enqueued == len(ticks) >= 4, "a tick was enqueued twice"
    assert max(ticks) <= int(seconds) * 1000, "a tick fired before Redis reached it"
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks)), ticks
