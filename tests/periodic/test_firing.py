"""Periodic tasks against real Redis and in-process workers: once per tick, catch-up,
overlap, two deploys, the deterministic id's processed marker."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

import strego
from strego.periodic.definition import task_id
from tests.conftest import wait_until

ServerFactory = Callable[..., Awaitable[strego.Server]]


async def redis_ms(broker: strego.RedisBroker) -> int:
    seconds, micros = await broker.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def stored_next(broker: strego.RedisBroker, name: str, queue: str = "default") -> int | None:
    score = await broker.redis.zscore(broker.keys(queue).periodic_next, name)
    return None if score is None else int(score)


def ticks_of(ids: list[str], name: str) -> list[int]:
    return sorted(int(i.rsplit(":", 1)[1]) for i in ids if i.startswith(f"periodic:{name}:"))


async def test_every_tick_fires_exactly_once_across_three_workers(
    make_server: ServerFactory, broker: strego.RedisBroker
) -> None:
    """Three workers declare one every-second schedule: each tick runs once, none missing."""
    done: list[str] = []

    async def beat(task: strego.Task) -> None:
        done.append(task.id)

    schedule = strego.Periodic("beat", every=1)
    for n in range(3):
        await make_server({"beat": beat}, periodic=[schedule], broker_options={"consumer": f"w{n}"})
    await wait_until(lambda: len(done) >= 5, timeout=20)
    ticks = ticks_of(done, "beat")
    assert len(ticks) == len(set(ticks)), "a tick ran twice"
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks)), ticks


async def test_fired_task_carries_schedule_options(
    make_server: ServerFactory, inspector: strego.Inspector
) -> None:
    """The run's payload, priority, labels and deterministic id come from the schedule."""
    seen: list[tuple[Any, strego.Task]] = []

    async def report(payload: dict[str, str], task: strego.Task) -> None:
        seen.append((payload, task))

    schedule = strego.Periodic(
        "report", {"kind": "daily"}, every=1, name="rep", priority=7, labels={"a": "b"}
    )
    await make_server({"report": report}, periodic=[schedule])
    await wait_until(lambda: seen, timeout=10)
    payload, task = seen[0]
    assert payload == {"kind": "daily"}
    assert task.priority == 7 and task.labels == {"a": "b"}
    assert task.id.startswith("periodic:rep:") and int(task.id.rsplit(":", 1)[1]) % 1000 == 0
    (info,) = await inspector.periodic("default")
    assert (info.name, info.type, info.every, info.cron, info.tz) == (
        "rep",
        "report",
        1.0,
        None,
        "UTC",
    )
    assert not info.paused and not info.orphaned and info.next_run is not None


@pytest.mark.parametrize(("catchup", "expected"), [("latest", 1), ("all", 5), ("none", 0)])
async def test_catchup_after_all_workers_stopped(
    make_server: ServerFactory, broker: strego.RedisBroker, catchup: str, expected: int
) -> None:
    """Every worker down for 8 ticks, then one starts: latest → 1 run, all(5) → 5, none → 0."""
    schedule = strego.Periodic(
        "hourly", every=3600, catchup=catchup, max_catchup=5, max_lateness=timedelta(hours=2)
    )
    first = await make_server({}, periodic=[schedule])
    await wait_until(lambda: stored_next(broker, "hourly"), timeout=10)  # started: next hour
    await first.stop()
    upcoming = await stored_next(broker, "hourly")
    assert upcoming is not None
    if upcoming - await redis_ms(broker) < 5_000:
        pytest.skip("too close to an hour boundary for this arrangement")
    # The state an 8-hour outage leaves: the stored next fire time 8 ticks in the past.
    await broker.redis.zadd(
        broker.keys("default").periodic_next, {"hourly": upcoming - 8 * 3_600_000}
    )
    await make_server({}, periodic=[schedule])
    await wait_until(lambda: _is(stored_next(broker, "hourly"), upcoming), timeout=10)
    fired = await broker.redis.hkeys(broker.keys("default").index)
    ticks = ticks_of([f.decode() for f in fired], "hourly")
    assert len(ticks) == expected
    assert ticks == [upcoming - k * 3_600_000 for k in range(expected, 0, -1)]


async def _is(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected


async def test_overlap_skip_never_runs_two_at_once(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """overlap="skip" with a handler slower than the interval: never two runs at once."""
    running = 0
    most = 0
    finished: list[str] = []

    async def slow(task: strego.Task) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(2.2)
        running -= 1
        finished.append(task.id)

    schedule = strego.Periodic("slow", every=1, overlap="skip")
    await make_server({"slow": slow}, periodic=[schedule], concurrency=5)
    await make_server(
        {"slow": slow}, periodic=[schedule], concurrency=5, broker_options={"consumer": "other"}
    )
    await wait_until(lambda: len(finished) >= 2, timeout=20)
    assert most == 1
    (info,) = await inspector.periodic("default")
    outcomes = {run.outcome for run in info.runs}
    assert outcomes == {"fired", "skipped"}


async def test_later_deploy_definition_wins_everywhere(
    make_server: ServerFactory, broker: strego.RedisBroker
) -> None:
    """Deploy 2 redefines a schedule: deploy 1's worker, still running, fires the new one."""
    payloads: list[tuple[str, int]] = []

    async def job(payload: dict[str, int], task: strego.Task) -> None:
        payloads.append((task.id, payload["v"]))

    old = strego.Periodic("job", {"v": 1}, every=1, name="j")
    new = strego.Periodic("job", {"v": 2}, every=1, name="j")
    await make_server({"job": job}, periodic=[old], broker_options={"consumer": "old"})
    await wait_until(lambda: payloads, timeout=10)
    deploy2 = await make_server({"job": job}, periodic=[new], broker_options={"consumer": "new"})
    await deploy2.stop()  # from here on only the old deploy's worker fires
    stored = await broker.redis.hget(broker.keys("default").periodic, "j")
    assert json.loads(stored)["payload"] == '{"v":2}'
    count = len(payloads)
    await wait_until(lambda: len(payloads) >= count + 2, timeout=10)
    assert all(v == 2 for _, v in payloads[count:])
    ticks = ticks_of([i for i, _ in payloads], "j")
    assert len(ticks) == len(set(ticks))


async def test_pause_resume_trigger_delete(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """The Inspector pauses (no runs), resumes, triggers a run now, deletes a schedule."""
    done: list[str] = []

    async def tick(task: strego.Task) -> None:
        done.append(task.id)

    server = await make_server({"tick": tick}, periodic=[strego.Periodic("tick", cron="0 0 1 1 *")])
    await wait_until(lambda: stored_next(broker, "tick"), timeout=10)
    await inspector.pause_periodic("tick")
    (info,) = await inspector.periodic()
    assert info.paused and info.next_run is None and info.cron == "0 0 1 1 *"
    triggered = await inspector.trigger_periodic("tick")
    assert triggered.id.startswith("periodic:tick:manual-")
    await wait_until(lambda: done == [triggered.id], timeout=10)
    (info,) = await inspector.periodic("default")
    assert info.last_task_id == triggered.id and info.runs[0].task_id == triggered.id
    await inspector.resume_periodic("tick")
    await wait_until(lambda: _is_future(broker), timeout=10)
    (info,) = await inspector.periodic("default")
    assert not info.paused and info.next_run is not None and info.next_run.month == 1
    await server.stop()  # no live worker declares it now: delete it for good
    await inspector.delete_periodic("tick")
    assert await inspector.periodic("default") == []
    with pytest.raises(strego.errors.PeriodicNotFoundError):
        await inspector.pause_periodic("tick")
    with pytest.raises(LookupError):
        await inspector.trigger_periodic("nope")


async def test_schedules_lost_in_redis_are_declared_again(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """Redis loses a live worker's schedules (a restart without data, a flush, a delete):
    the worker declares them again and they keep firing, never silently stopping."""
    done: list[str] = []

    async def beat(task: strego.Task) -> None:
        done.append(task.id)

    await make_server({"beat": beat}, periodic=[strego.Periodic("beat", every=1)])
    await wait_until(lambda: done, timeout=10)
    keys = broker.keys("default")
    await broker.redis.delete(*keys.periodic_keys(["beat"]))  # every periodic key gone
    count = len(done)
    await wait_until(lambda: len(done) >= count + 2, timeout=10)
    await inspector.delete_periodic("beat")  # also what an operator's delete does to it
    await wait_until(lambda: _listed(inspector, "beat"), timeout=10)
    count = len(done)
    await wait_until(lambda: len(done) >= count + 2, timeout=10)
    ticks = ticks_of(done, "beat")
    assert len(ticks) == len(set(ticks))


async def _listed(inspector: strego.Inspector, name: str) -> bool:
    return name in [i.name for i in await inspector.periodic()]


async def _is_future(broker: strego.RedisBroker) -> bool:
    score = await stored_next(broker, "tick")
    return score is not None and score > await redis_ms(broker)


async def test_undeclared_schedule_is_listed_orphaned_until_deleted(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """A schedule no live worker declares any more stays listed, marked orphaned."""
    first = await make_server(
        {}, periodic=[strego.Periodic("a", cron="0 9 * * *"), strego.Periodic("b", every=60)]
    )
    await first.stop()
    await make_server({}, periodic=[strego.Periodic("a", cron="0 9 * * *")])
    # The state a minute without any worker declaring "b" leaves: its seen time aged.
    now = await redis_ms(broker)
    await broker.redis.hset(broker.keys("default").periodic_seen, "b", now - 61_000)
    infos = {i.name: i for i in await inspector.periodic()}
    assert not infos["a"].orphaned and infos["b"].orphaned
    await inspector.delete_periodic("b")
    assert [i.name for i in await inspector.periodic()] == ["a"]


async def test_processed_marker_refuses_a_tick_that_already_ran(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """A completed run leaves the marker of its id; a tick fired again is refused by it."""
    done: list[str] = []

    async def once(task: strego.Task) -> None:
        done.append(task.id)

    schedule = strego.Periodic("once", every=3600, name="o", max_lateness=7200)
    keys = broker.keys("default")
    await make_server({"once": once}, periodic=[schedule], keep_completed=0)
    await wait_until(lambda: stored_next(broker, "o"), timeout=10)
    upcoming = await stored_next(broker, "o")
    assert upcoming is not None
    ran_tick = upcoming - 3_600_000
    # Fire the previous hour (as if it were still due), let it complete...
    await broker.redis.zadd(keys.periodic_next, {"o": ran_tick})
    await broker.redis.publish(keys.channel, "s:0")
    await wait_until(lambda: done == [task_id("o", ran_tick)], timeout=10)
    await wait_until(
        lambda: broker.redis.exists(keys.processed(task_id("o", ran_tick))), timeout=10
    )
    assert await broker.redis.hget(keys.index, task_id("o", ran_tick)) is None  # not kept
    # ...then move the schedule back to it again (a failover that lost the advance).
    await broker.redis.zadd(keys.periodic_next, {"o": ran_tick})
    await broker.redis.publish(keys.channel, "s:0")
    await wait_until(lambda: _is(stored_next(broker, "o"), upcoming), timeout=10)
    (info,) = await inspector.periodic()
    assert [r.outcome for r in info.runs][:2] == ["processed", "fired"]
    assert done == [task_id("o", ran_tick)]


async def test_fire_log_is_capped_at_20(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """Memory per schedule is constant: the log keeps the last 20 runs."""
    await make_server({}, periodic=[strego.Periodic("t", every=3600)])
    await wait_until(lambda: stored_next(broker, "t"), timeout=10)
    ids = [(await inspector.trigger_periodic("t")).id for _ in range(25)]
    assert await broker.redis.llen(broker.keys("default").periodic_log("t")) == 20
    (info,) = await inspector.periodic()
    assert [r.task_id for r in info.runs] == ids[::-1][:20]


async def test_delete_queue_removes_its_schedules(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """delete_queue leaves no periodic key of the queue behind."""
    server = await make_server(
        {}, queues=["jobs"], periodic=[strego.Periodic("t", every=60, queue="jobs")]
    )
    await wait_until(lambda: stored_next(broker, "t", "jobs"), timeout=10)
    await inspector.trigger_periodic("t", "jobs")
    await server.stop()
    await inspector.delete_queue("jobs")
    assert await broker.redis.keys(f"{broker.config.prefix}:{{jobs}}:periodic*") == []
    assert await broker.redis.keys(f"{broker.config.prefix}:{{jobs}}:stream:*") == []
    assert await inspector.periodic("jobs") == []


def test_server_refuses_duplicate_names_and_non_periodic(broker: strego.RedisBroker) -> None:
    """Two schedules with one name in one queue, or a non-Periodic: refused at once."""
    with pytest.raises(strego.ConfigurationError, match="two periodic schedules"):
        strego.Server(
            broker, periodic=[strego.Periodic("a", every=1), strego.Periodic("a", every=2)]
        )
    with pytest.raises(strego.ConfigurationError, match="Periodic objects"):
        strego.Server(broker, periodic=["a"])  # type: ignore[list-item]
    strego.Server(
        broker, periodic=[strego.Periodic("a", every=1), strego.Periodic("a", every=1, queue="b")]
    )


async def test_garbage_definition_is_listed_with_its_error_and_never_fired(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """A declared definition someone broke in Redis, due long ago: listed with the
    reason, never fired; the worker keeps firing its other schedules."""
    done: list[str] = []

    async def beat(task: strego.Task) -> None:
        done.append(task.id)

    keys = broker.keys("default")
    await make_server(
        {"beat": beat, "x": beat},
        periodic=[strego.Periodic("beat", every=1), strego.Periodic("x", every=1)],
    )
    await broker.redis.hset(keys.periodic, "x", "{not json")
    await broker.redis.zadd(keys.periodic_next, {"x": 1})  # due long ago
    count = len(done)
    await wait_until(lambda: len([i for i in done[count:] if "beat" in i]) >= 2, timeout=10)
    infos = {i.name: i for i in await inspector.periodic()}
    assert infos["x"].error is not None and "unreadable" in infos["x"].error
    assert await stored_next(broker, "x") == 1  # never advanced: never fired


async def test_listing_survives_keys_of_the_wrong_type(
    make_server: ServerFactory, broker: strego.RedisBroker, inspector: strego.Inspector
) -> None:
    """Periodic keys someone overwrote with another type read as empty, never an error."""
    await make_server({}, periodic=[strego.Periodic("t", every=60)])
    await wait_until(lambda: stored_next(broker, "t"), timeout=10)
    other = broker.keys("other")
    await broker.redis.sadd(broker.global_keys.queues, "other")
    for key in (other.periodic, other.periodic_next, other.periodic_seen, other.periodic_last):
        await broker.redis.set(key, "garbage")
    await broker.redis.set(other.periodic_paused, "garbage")
    assert [i.name for i in await inspector.periodic()] == ["t"]
    keys = broker.keys("default")
    await broker.redis.delete(keys.periodic_log("t"))
    await broker.redis.set(keys.periodic_log("t"), "garbage")
    (info,) = await inspector.periodic()
    assert info.runs == ()


async def test_firing_survives_a_log_key_of_the_wrong_type(
    make_server: ServerFactory, broker: strego.RedisBroker
) -> None:
    """A schedule's log and last-run keys overwritten with garbage: it keeps firing."""
    done: list[str] = []

    async def beat(task: strego.Task) -> None:
        done.append(task.id)

    keys = broker.keys("default")
    await broker.redis.set(keys.periodic_log("beat"), "garbage")
    await broker.redis.set(keys.periodic_last, "garbage")
    await make_server({"beat": beat}, periodic=[strego.Periodic("beat", every=1, overlap="skip")])
    await wait_until(lambda: len(done) >= 2, timeout=10)
    ticks = ticks_of(done, "beat")
    assert len(ticks) == len(set(ticks))
