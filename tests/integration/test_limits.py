"""Global limits (strego.RateLimit, strego.ConcurrencyLimit) across real workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import strego
from strego.broker.redis.keys import LimitKeys
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import redis_broker

ROOT = Path(__file__).resolve().parents[2]
OBSERVATION_SLACK = 1  # see docs/limits.md: measured in handlers, jitter can add one


@pytest.fixture
def spawn(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "starts.log"
    log.touch()

    def start(**env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.limits_app"],
            cwd=ROOT,
            env={
                **os.environ,
                "STREGO_REDIS_URL": redis_url,
                "STREGO_PREFIX": prefix,
                "WORKER_LOG": str(log),
                **env,
            },
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


async def _workers(inspector: strego.Inspector, count: int) -> bool:
    return len(await inspector.workers()) >= count


def events(log: Path, kind: str) -> list[tuple[str, float, int, int]]:
    """(task id, time, retry_count, pid) of each logged start or end."""
    found = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == kind:
            found.append((parts[1], float(parts[2]), int(parts[3]), int(parts[4])))
    return found


def max_overlap(starts: dict[str, float], ends: dict[str, float]) -> int:
    edges = sorted([(t, 1) for t in starts.values()] + [(t, -1) for t in ends.values()])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


async def test_rate_limit_across_two_processes(
    spawn: Any, client: strego.Client, inspector: strego.Inspector
) -> None:
    """RateLimit 10/s, burst 1, 2 processes x concurrency 20, 200 tasks: no 1 s window
    holds more than 10 starts (+1 for observation jitter), all complete, none retried."""
    log: Path = spawn.log
    for _ in range(2):
        spawn(LIMITS_MODE="rate", CONCURRENCY="20")
    infos = await client.enqueue_many([strego.Task("limited") for _ in range(200)])
    ids = {info.id for info in infos if isinstance(info, strego.TaskInfo)}
    await wait_until(lambda: len(events(log, "end")) >= 200, timeout=90, interval=0.2)
    starts = events(log, "start")
    assert {s[0] for s in starts} == ids and len(starts) == 200  # each ran once
    assert all(s[2] == 0 for s in starts)  # parking is not a retry
    assert len({s[3] for s in starts}) == 2  # both processes took part
    times = sorted(s[1] for s in starts)
    window = 10 + OBSERVATION_SLACK
    crowded = [times[i + window] - times[i] for i in range(len(times) - window)]
    assert min(crowded) >= 1.0, f"{window + 1} starts within {min(crowded):.3f}s"
    # And over the whole run the rate is the configured one, not twice it.
    assert (len(times) - 1) / (times[-1] - times[0]) <= 10 * 1.02
    queue = await inspector.queue_info("default")
    assert queue.failed == 0 and queue.retried == 0 and queue.dead_total == 0
    assert queue.rate_limited > 0  # parked, counted, visible
    for info in infos[:20]:
        assert isinstance(info, strego.TaskInfo)
        record = await inspector.get_task(info.id)
        assert record is not None and record.state == "completed" and record.retry_count == 0


async def test_concurrency_limit_across_two_processes(spawn: Any, client: strego.Client) -> None:
    """ConcurrencyLimit 3 across 2 processes x concurrency 10: overlap never above 3."""
    log: Path = spawn.log
    for _ in range(2):
        spawn(LIMITS_MODE="concurrency", CONCURRENCY="10", WORKER_SLEEP="0.15")
    await client.enqueue_many([strego.Task("limited") for _ in range(40)])
    await wait_until(lambda: len(events(log, "end")) >= 40, timeout=90, interval=0.2)
    starts = {e[0]: e[1] for e in events(log, "start")}
    ends = {e[0]: e[1] for e in events(log, "end")}
    assert len(starts) == len(ends) == 40
    assert max_overlap(starts, ends) == 3  # used fully, never exceeded
    assert all(e[2] == 0 for e in events(log, "start"))
    assert len({e[3] for e in events(log, "start")}) == 2


async def test_killed_workers_slots_free_within_claim_stale_after(
    spawn: Any, client: strego.Client
) -> None:
    """A worker SIGKILLed while holding all 3 slots: they free within
    claim_stale_after, and its tasks and the waiting ones all complete elsewhere."""
    log: Path = spawn.log
    stale = 3.0
    victim = spawn(LIMITS_MODE="concurrency", WORKER_SLEEP="60", CLAIM_STALE_AFTER=str(stale))
    await client.enqueue_many([strego.Task("limited") for _ in range(3)])
    await wait_until(lambda: len(events(log, "start")) == 3, timeout=30)
    # The survivor is up before the kill, so its interpreter start-up (seconds on a
    # loaded machine) is not counted as the time the slots take to free.
    spawn(LIMITS_MODE="concurrency", WORKER_SLEEP="0.05", CLAIM_STALE_AFTER=str(stale))
    inspector = strego.Inspector(redis_broker(client))
    await wait_until(lambda: _workers(inspector, 2), timeout=60, interval=0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.time()
    await client.enqueue_many([strego.Task("limited") for _ in range(3)])
    await wait_until(lambda: len(events(log, "end")) >= 6, timeout=60, interval=0.1)
    later = sorted(e[1] for e in events(log, "start") if e[1] > killed_at)
    # Slots free at `stale`; the survivor then finds them at its next reclaim check.
    assert later[0] - killed_at < stale + 3.0
    assert len({e[0] for e in events(log, "end")}) == 6


async def test_killed_workers_pool_slots_free_within_claim_stale_after(
    spawn: Any, client: strego.Client, prefix: str
) -> None:
    """A worker SIGKILLed while its tasks run on slots of its pool (a limit far from
    reached: they are held in the worker's name, not the deliveries'): the slots free
    within claim_stale_after like any other."""
    log: Path = spawn.log
    stale = 3.0
    victim = spawn(LIMITS_MODE="concurrency", LIMIT="100", CONCURRENCY="4",
                   WORKER_SLEEP="0.01", CLAIM_STALE_AFTER=str(stale))  # fmt: skip
    # 40 short tasks, then 4 long ones: fetched while the worker is busy, they find the
    # pool (a fetch after an idle spell takes nothing ahead: its tasks ask).
    short = [strego.Task("limited") for _ in range(40)]
    await client.enqueue_many([*short, *[strego.Task("limited", {"sleep": 60}) for _ in range(4)]])
    await wait_until(lambda: len(events(log, "start")) == 44, timeout=30, interval=0.1)
    redis = redis_broker(client).redis
    holders = LimitKeys(prefix, "export").per_key("")[1]

    async def held_by_the_running_tasks() -> bool:
        # 4 slots, from the pool (a fetch's estimate of its share may leave one to ask
        # for its own on a loaded machine); free pool slots released once it is full.
        held = await redis.zrange(holders, 0, -1)
        return len(held) == 4 and any(m.startswith(b"a|") for m in held)

    await wait_until(held_by_the_running_tasks, timeout=5)
    inspector = strego.Inspector(redis_broker(client))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.time()

    async def freed() -> bool:
        found = {lim.name: lim for lim in await inspector.limits()}
        return found["export"].in_use == 0

    await wait_until(freed, timeout=stale + 5, interval=0.1)
    assert time.time() - killed_at < stale + 1.0


async def test_per_key_limits_keep_tenants_apart(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """Two tenants each limited to 2 at once: tenant b's tasks run at once, beside
    tenant a's backlog, and neither tenant ever has more than 2 running."""
    running: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    started: dict[str, float] = {}

    async def export(payload: dict[str, str], task: strego.Task) -> None:
        tenant = payload["tenant"]
        running[tenant] += 1
        peak[tenant] = max(peak[tenant], running[tenant])
        started[task.id] = time.monotonic()
        await asyncio.sleep(0.3)
        running[tenant] -= 1

    server = await make_server({}, start=False, concurrency=10)
    server.handle(
        "export",
        export,
        limits=[strego.ConcurrencyLimit("tenant", 2, key=lambda t: t.payload["tenant"])],
    )
    await server.start()
    await client.enqueue_many([strego.Task("export", {"tenant": "a"}) for _ in range(12)])
    await wait_until(lambda: running["a"] == 2)
    sent = time.monotonic()
    b = await client.enqueue_many([strego.Task("export", {"tenant": "b"}) for _ in range(2)])
    b_ids = [info.id for info in b if isinstance(info, strego.TaskInfo)]
    await wait_until(lambda: all(i in started for i in b_ids), timeout=10)
    # a's backlog alone takes 12 / 2 * 0.3 = 1.8 s; b started at once beside it.
    assert max(started[i] for i in b_ids) - sent < 0.9
    await wait_until(lambda: len(started) == 14, timeout=30)
    await wait_until(lambda: running["a"] == 0)
    assert peak == {"a": 2, "b": 2}


async def test_queue_limit_is_checked_in_the_fetch(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A queue-wide RateLimit: its tasks are never fetched early (none parked), their
    starts are spaced; another queue on the same worker runs at full speed."""
    starts: dict[str, list[float]] = {"limited": [], "free": []}

    async def work(task: strego.Task) -> None:
        starts[task.queue].append(time.monotonic())

    await make_server(
        {"work": work},
        queues=["limited", "free"],
        concurrency=10,
        queue_limits={"limited": strego.RateLimit("slow", 5)},
    )
    began = time.monotonic()
    await client.enqueue_many([strego.Task("work", queue="limited") for _ in range(10)])
    await client.enqueue_many([strego.Task("work", queue="free") for _ in range(200)])
    await wait_until(lambda: len(starts["free"]) == 200, timeout=30)
    free_done = time.monotonic() - began
    await wait_until(lambda: len(starts["limited"]) == 10, timeout=30)
    limited_done = starts["limited"][-1] - began
    assert free_done < limited_done / 2  # the limited queue did not slow the other
    gaps = [b - a for a, b in zip(starts["limited"], starts["limited"][1:], strict=False)]
    assert sum(gaps) / len(gaps) >= 0.19  # 5 a second: 0.2 s apart on average
    # Nothing of the limited queue was fetched only to be parked.
    assert (await inspector.queue_info("limited")).rate_limited == 0


async def test_limiter_keys_deleted_under_load_recover(
    make_server: ServerFactory, client: strego.Client, broker: strego.RedisBroker
) -> None:
    """Deleting every limiter key while tasks run: no crash, every task completes
    once, none dead."""
    done: list[str] = []

    async def call(task: strego.Task) -> None:
        await asyncio.sleep(0.01)
        done.append(task.id)

    server = await make_server({}, start=False, concurrency=8)
    server.handle(
        "call",
        call,
        limits=[strego.ConcurrencyLimit("pool", 3), strego.RateLimit("api", 100)],
    )
    await server.start()
    await client.enqueue_many([strego.Task("call") for _ in range(150)])
    pattern = f"{broker.config.prefix}:{{lim:*"
    deletions = 0
    while len(done) < 150 and deletions < 200:
        keys = [k async for k in broker.redis.scan_iter(match=pattern)]
        if keys:
            await broker.redis.delete(*keys)
            deletions += 1
        await asyncio.sleep(0.02)
    await wait_until(lambda: len(done) == 150, timeout=30)
    assert deletions > 5
    assert len(set(done)) == 150
    queue = await strego.Inspector(broker).queue_info("default")
    assert queue.dead == 0


async def test_inspector_limits_shows_use_parked_and_waits(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """Inspector.limits(): each declared limiter with its limit, slots in use per key,
    parked tasks and recent waits; a queue-wide limit names its queue."""
    release = asyncio.Event()

    async def export(payload: dict[str, str]) -> None:
        await release.wait()

    server = await make_server(
        {}, start=False, queue_limits={"default": strego.RateLimit("q", 1000, burst=5)}
    )
    server.handle(
        "export",
        export,
        limits=[strego.ConcurrencyLimit("tenant", 1, key=lambda t: t.payload["tenant"])],
    )
    await server.start()
    await client.enqueue_many([strego.Task("export", {"tenant": "a"}) for _ in range(3)])
    await client.enqueue(strego.Task("export", {"tenant": "b"}))

    async def parked_two() -> bool:
        found = {lim.name: lim for lim in await inspector.limits()}
        tenant = found.get("tenant")
        return tenant is not None and tenant.parked == 2 and tenant.in_use == 2

    deadline = time.monotonic() + 10
    while not await parked_two():
        assert time.monotonic() < deadline, await inspector.limits()
        await asyncio.sleep(0.05)
    found = {lim.name: lim for lim in await inspector.limits()}
    tenant, queue = found["tenant"], found["q"]
    assert (tenant.kind, tenant.limit, tenant.keyed, tenant.queue) == ("concurrency", 1, True, None)
    assert {k.key: (k.in_use, k.parked) for k in tenant.keys} == {"a": (1, 2), "b": (1, 0)}
    assert tenant.held >= 2 and tenant.recent_waits and tenant.recent_waits[0].key == "a"
    assert (queue.kind, queue.queue, queue.limit, queue.burst) == ("rate", "default", 1000, 5)
    assert queue.granted >= 2
    assert tenant.description == "1 at once" and queue.description == "1000 per 1s, burst 5"
    release.set()


async def test_a_long_handler_keeps_its_slot_past_claim_stale_after(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """A live worker renews its slots with its leases: a handler running for several
    claim_stale_after periods keeps its slot; the next task starts only after it."""
    spans: dict[str, list[float]] = {}

    async def slow(payload: float, task: strego.Task) -> None:
        spans[task.id] = [time.monotonic()]
        await asyncio.sleep(payload)
        spans[task.id].append(time.monotonic())

    server = await make_server(
        {},
        start=False,
        broker_options={"claim_stale_after": 0.4, "claim_check_interval": 0.1},
    )
    server.handle("slow", slow, limits=[strego.ConcurrencyLimit("one", 1)])
    await server.start()
    first = await client.enqueue(strego.Task("slow", 1.5))
    await wait_until(lambda: first.id in spans)
    second = await client.enqueue(strego.Task("slow", 0.0))
    await wait_until(lambda: len(spans.get(second.id, [])) == 2, timeout=20)
    assert spans[second.id][0] >= spans[first.id][1]  # never both at once


async def test_cancel_while_held_back_finishes_it_cancelled(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A task parked by a limit and then cancelled never runs: it ends cancelled."""
    release = asyncio.Event()
    ran: list[str] = []

    async def hold(task: strego.Task) -> None:
        ran.append(task.id)
        await release.wait()

    server = await make_server({}, start=False)
    server.handle("hold", hold, limits=[strego.ConcurrencyLimit("one", 1)])
    await server.start()
    first = await client.enqueue(strego.Task("hold"))
    await wait_until(lambda: ran == [first.id])
    second = await client.enqueue(strego.Task("hold"))

    async def parked() -> bool:
        record = await inspector.get_task(second.id)
        return record is not None and record.state == "scheduled"

    await wait_until(parked, timeout=10)
    assert await client.cancel(second.id)
    release.set()
    # The slot freed and went to a later task; the cancelled one is final (a parked task
    # sits in the scheduled set, which cancel empties at once) and never ran.
    third = await client.enqueue(strego.Task("hold"))
    await wait_until(lambda: third.id in ran, timeout=20)
    record = await inspector.get_task(second.id)
    assert record is not None and record.state == "cancelled" and ran == [first.id, third.id]


async def test_a_failing_key_function_dead_letters_the_task(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A key function that raises on a task: that task is dead-lettered at once with
    reason limit_key (retrying cannot fix it); tasks it works on run."""
    ran: list[str] = []

    async def export(payload: dict[str, str], task: strego.Task) -> None:
        ran.append(task.id)

    server = await make_server({}, start=False)
    server.handle(
        "export",
        export,
        limits=[strego.ConcurrencyLimit("tenant", 1, key=lambda t: t.payload["tenant"])],
    )
    await server.start()
    bad = await client.enqueue(strego.Task("export", {"no tenant": "x"}))
    good = await client.enqueue(strego.Task("export", {"tenant": "acme"}))
    await wait_until(lambda: ran == [good.id])

    async def dead() -> bool:
        record = await inspector.get_task(bad.id)
        return record is not None and record.state == "dead"

    deadline = time.monotonic() + 10
    while not await dead():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    record = await inspector.get_task(bad.id)
    assert record is not None and record.dead_reason == "limit_key"
    assert record.last_error is not None and "KeyError" in record.last_error
