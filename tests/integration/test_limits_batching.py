"""Batched limit checks (docs/limits.md, "What checking costs"): many tasks asking in
one loop turn share one script call per limiter key; a fetch takes starts and slots
ahead for its tasks, all or none and only far from the limit; a worker's pool of
concurrency slots passes them from task to task. Real Redis: grants are counted in
Redis, never in a double."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from redis import Redis

import strego
from strego.broker.limiting import Slot
from strego.broker.redis.keys import LimitKeys
from tests.conftest import wait_until
from tests.integration.conftest import ServerFactory
from tests.integration.probes import redis_broker
from tests.integration.test_limits import OBSERVATION_SLACK


async def _evalsha_calls(broker: strego.RedisBroker) -> int:
    stats = await broker.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def _turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _granted(inspector: strego.Inspector, name: str) -> int:
    found = {lim.name: lim for lim in await inspector.limits()}
    return found[name].granted if name in found else 0


async def test_concurrency_asks_of_one_turn_grant_exactly_the_limit_in_one_call(
    broker: strego.RedisBroker,
) -> None:
    """15 deliveries ask a ConcurrencyLimit(5) in the same loop turn: one script call,
    exactly 5 slots granted, the other 10 told when to come back; released together
    (one call), the slots are free again."""
    pool = strego.ConcurrencyLimit("pool", 5)
    members = [f"default|1-{i}|1" for i in range(15)]
    await broker.limits.ask(pool, None, "", "default", "warm", "warm|0|1")  # script loaded
    await broker.limits.release([Slot(pool, None, "", "warm|0|1")])
    before = await _evalsha_calls(broker)
    verdicts = await asyncio.gather(
        *[broker.limits.ask(pool, None, "", "default", f"t{i}", m) for i, m in enumerate(members)]
    )
    assert await _evalsha_calls(broker) - before == 1
    granted = [m for m, v in zip(members, verdicts, strict=True) if v.now]
    assert len(granted) == 5
    assert all(v.wait_s > 0 and not v.reserved for v in verdicts if not v.now)
    before = await _evalsha_calls(broker)
    await asyncio.gather(
        *[broker.limits.release([Slot(pool, None, "", m)], ran=False) for m in granted]
    )
    assert await _evalsha_calls(broker) - before == 1
    again = await broker.limits.ask(pool, None, "", "default", "late", "default|2-0|1")
    assert again.now


async def test_rate_asks_of_one_turn_respect_the_burst(broker: strego.RedisBroker) -> None:
    """12 tasks ask a RateLimit(2/s, burst 4) at once, in one call: 4 start now (the
    burst), none may wait here (max wait 0), the rest are booked 0.5 s apart."""
    api = strego.RateLimit("api", 2, burst=4)
    before = await _evalsha_calls(broker)
    verdicts = await asyncio.gather(
        *[broker.limits.ask(api, None, "", "default", f"t{i}", "") for i in range(12)]
    )
    assert await _evalsha_calls(broker) - before == 1
    assert sum(v.now for v in verdicts) == 4
    waits = sorted(v.wait_s for v in verdicts if not v.now)
    assert len(waits) == 8 and not any(v.reserved for v in verdicts)
    assert all(0.45 < b - a < 0.55 for a, b in itertools.pairwise(waits))  # one by one


async def test_a_fetch_takes_rate_starts_ahead_and_gives_back_what_is_unused(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """After a wave of tasks asked an unkeyed RateLimit, the next fetch takes starts
    ahead in its own pipeline: as many as it fetched tasks; the 3 its tasks did not
    use are given back two loop turns later (the limiter's granted total is what was
    used), and nothing is left to take after that."""
    api = strego.RateLimit("api", 10_000, burst=100)
    await broker.prepare(["default"])
    await broker.limits.declare([(api, None)])
    await client.enqueue_many([strego.Task("call") for _ in range(8)])
    await client.enqueue_many([strego.Task("call") for _ in range(8)])
    assert len((await broker.fetch([("default", 8)]))["default"] or []) == 8
    for _ in range(8):  # that fetch's wave: 8 tasks out of 8 asked this limiter
        assert not broker.limits.take_ahead(api)
    found = (await broker.fetch([("default", 8)]))["default"] or []
    assert len(found) == 8
    used = [broker.limits.take_ahead(api) for _ in range(5)]
    assert used == [True] * 5
    await _turns()
    assert not broker.limits.take_ahead(api)  # the rest was given back ...
    await wait_until(lambda: _granted_is(inspector, "api", 5))  # ... in Redis too


async def _granted_is(inspector: strego.Inspector, name: str, value: int) -> bool:
    return await _granted(inspector, name) == value


async def test_a_fetch_takes_pool_slots_only_far_from_the_limit(
    broker: strego.RedisBroker, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A concurrency take for the worker's pool is all or none, and only while twice as
    many slots are free: a fetch of 6 tasks against ConcurrencyLimit(10) takes none
    (each task asks as before); against ConcurrencyLimit(100) it takes 6. Slots no
    task took are released once no fetch is in flight; the rest when their tasks put
    them back, and only the starts made count as granted."""
    near, far = strego.ConcurrencyLimit("near", 10), strego.ConcurrencyLimit("far", 100)
    await broker.prepare(["default"])
    await broker.limits.declare([(near, None), (far, None)])
    await client.enqueue_many([strego.Task("call") for _ in range(12)])
    assert len((await broker.fetch([("default", 6)]))["default"] or []) == 6
    for _ in range(6):  # that fetch's tasks ask (nothing in the pools yet)
        assert not broker.limits.take_ahead(near)
        assert not broker.limits.take_ahead(far)
    assert len((await broker.fetch([("default", 6)]))["default"] or []) == 6
    assert not broker.limits.take_ahead(near)
    assert [broker.limits.take_ahead(far) for _ in range(4)] == [True] * 4

    async def far_use(in_use: int, granted: int) -> bool:
        found = {lim.name: lim for lim in await inspector.limits()}
        assert found["near"].in_use == 0
        return (found["far"].in_use, found["far"].granted) == (in_use, granted)

    await wait_until(lambda: far_use(4, 4))  # the 2 unused released, the starts counted
    broker.limits.put_back([far] * 4)
    await wait_until(lambda: far_use(0, 4))


async def test_a_pool_holds_no_slot_while_the_worker_runs_other_tasks(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """After a burst of limited tasks, a worker whose capacity is taken by long tasks
    of another type (no fetch in flight) holds none of the limiter's slots: a pool
    slot never sits unused while the worker is not fetching."""
    done = 0
    release = asyncio.Event()

    async def short(task: strego.Task) -> None:
        nonlocal done
        done += 1

    async def long(task: strego.Task) -> None:
        await release.wait()

    server = await make_server({}, start=False, concurrency=4)
    server.handle("short", short, limits=[strego.ConcurrencyLimit("pool", 100)])
    server.handle("long", long)
    await server.start()
    await client.enqueue_many([strego.Task("short") for _ in range(200)])
    await client.enqueue_many([strego.Task("long") for _ in range(4)])
    await wait_until(lambda: done == 200, timeout=30)

    async def none_held() -> bool:
        found = {lim.name: lim for lim in await inspector.limits()}
        return found["pool"].in_use == 0 and found["pool"].granted == 200

    await wait_until(none_held)
    release.set()


async def test_slots_pass_from_task_to_task_and_are_released_when_idle(
    make_server: ServerFactory, client: strego.Client, inspector: strego.Inspector
) -> None:
    """A worker running many short tasks under a ConcurrencyLimit far from its limit
    passes slots from finished tasks to the next fetch's: never more running than the
    limit allows, every start counted in the limiter's granted total, and once idle
    no slot is left held."""
    running, peak, done = 0, 0, 0

    async def call(task: strego.Task) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        done += 1

    server = await make_server({}, start=False, concurrency=10)
    server.handle("call", call, limits=[strego.ConcurrencyLimit("pool", 25)])
    await server.start()
    await client.enqueue_many([strego.Task("call") for _ in range(300)])
    await wait_until(lambda: done == 300, timeout=30)
    assert peak <= 10

    async def settled() -> bool:
        found = {lim.name: lim for lim in await inspector.limits()}
        return found["pool"].in_use == 0 and found["pool"].granted == 300

    await wait_until(settled)


async def test_rate_limit_taken_ahead_holds_the_window(
    make_server: ServerFactory, client: strego.Client
) -> None:
    """A RateLimit(100/s, burst 30) that a fetch of 10 can take ahead for (more than
    10 conform after a quiet spell): in any 1-second window the handlers start at
    most limit + burst - 1 tasks (+ the observation slack of docs/limits.md)."""
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def call(task: strego.Task) -> None:
        starts.append(loop.time())

    server = await make_server({}, start=False, concurrency=10)
    server.handle("call", call, limits=[strego.RateLimit("api", 100, burst=30)])
    await server.start()
    await client.enqueue_many([strego.Task("call") for _ in range(260)])
    await wait_until(lambda: len(starts) == 260, timeout=30)
    starts.sort()
    most = max(sum(1 for t in starts[i:] if t < start + 1.0) for i, start in enumerate(starts))
    assert most <= 100 + 30 - 1 + OBSERVATION_SLACK


async def test_a_stalled_workers_pool_lends_no_slot_until_renewed(
    make_server: ServerFactory, client: strego.Client, redis_url: str, prefix: str
) -> None:
    """The worker's event loop stalls longer than claim_stale_after while its pool
    holds slots of ConcurrencyLimit(8): in Redis they expire, and others take all 8.
    After the stall no limited task starts on the stale pool (each asks, and waits)
    until the others let go; then all complete."""
    stale = 1.0
    holders = LimitKeys(prefix, "pool").per_key("")[1]
    starts: list[float] = []
    stall: dict[str, float] = {}

    def others_take_every_slot() -> None:  # (a thread: runs while the loop is stalled)
        redis = Redis.from_url(redis_url)
        deadline = time.monotonic() + 10
        while True:  # until every slot the stalled worker holds has expired in Redis
            seconds, micros = redis.time()
            now_ms = seconds * 1000 + micros // 1000
            if not redis.zcount(holders, now_ms, "+inf") or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        redis.zremrangebyscore(holders, "-inf", now_ms)  # (what any acquire does)
        redis.zadd(holders, {f"other|{i}": now_ms + 60_000 for i in range(8)})
        redis.close()

    async def limited(task: strego.Task) -> None:
        starts.append(time.time())
        await asyncio.sleep(0.01)

    async def freeze(task: strego.Task) -> None:
        threading.Thread(target=others_take_every_slot, daemon=True).start()
        time.sleep(stale + 1.2)  # noqa: ASYNC251 (blocks the event loop: a stall)
        stall["ended"] = time.time()

    server = await make_server(
        {"freeze": freeze},
        start=False,
        concurrency=4,
        broker_options={"claim_stale_after": stale, "claim_check_interval": 0.2},
    )
    server.handle("limited", limited, limits=[strego.ConcurrencyLimit("pool", 8)])
    await server.start()
    tasks = [strego.Task("limited") for _ in range(100)]
    tasks += [strego.Task("freeze"), *[strego.Task("limited") for _ in range(30)]]
    await client.enqueue_many(tasks)
    await wait_until(lambda: "ended" in stall, timeout=30)
    await asyncio.sleep(1.0)  # the window watched: the others hold every slot for 1 s
    others_left = time.time()
    await redis_broker(client).redis.zrem(holders, *[f"other|{i}" for i in range(8)])
    await wait_until(lambda: len(starts) == 130, timeout=30)
    during = [t for t in starts if stall["ended"] < t < others_left]
    assert during == [], f"{len(during)} started on slots the pool no longer held"
