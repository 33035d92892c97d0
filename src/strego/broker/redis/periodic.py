"""Periodic schedules in Redis: declare, find due, fire (compare-and-set), administer.

Every key of a schedule is in its queue's slot (see keys.py), so each script is one
atomic step on Redis Cluster too. The three worker scripts are ``lua/periodic_*.lua``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strego.broker.redis.connection import text
from strego.broker.redis.scripts import Script, ScriptCall, _read
from strego.envelope import encode
from strego.errors import ConfigurationError, PeriodicNotFoundError
from strego.ids import new_task_id
from strego.periodic.base import DueReport, DueSchedule, FireRequest, FireResult
from strego.periodic.definition import Definition
from strego.periodic.info import ORPHANED_AFTER_S, PeriodicInfo, PeriodicRun
from strego.task import TaskInfo, TaskState

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["RedisPeriodics"]


class _Scripts:
    def __init__(self) -> None:
        lib = _read("_lib")
        self.declare = Script("periodic_declare", lib + _read("periodic_declare"))
        self.due = Script("periodic_due", lib + _read("periodic_due"))
        self.fire = Script("periodic_fire", lib + _read("periodic_fire"))


class RedisPeriodics:
    """The Redis side of periodic tasks, for workers and admins alike."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._scripts = _Scripts()

    @property
    def _redis(self) -> Any:
        return self._broker.redis

    # -- worker -----------------------------------------------------------------

    async def declare(self, queue: str, definitions: Mapping[str, str]) -> int:
        keys = self._broker.keys(queue)
        args: list[str] = [keys.channel]
        for name, definition in definitions.items():
            args += [name, definition]
        await self._redis.sadd(self._broker.global_keys.queues, queue)
        return int(
            await self._scripts.declare(
                self._redis,
                [keys.periodic, keys.periodic_next, keys.periodic_seen, keys.periodic_paused],
                args,
            )
        )

    async def due(self, queue: str, names: Sequence[str], *, touch: bool) -> DueReport:
        keys = self._broker.keys(queue)
        now, soonest, flat, lost = await self._scripts.due(
            self._redis,
            [keys.periodic, keys.periodic_next, keys.periodic_seen, keys.periodic_paused],
            ["1" if touch else "0", *names],
        )
        due = [
            DueSchedule(text(flat[i]), int(flat[i + 1]), text(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]
        soonest_ms = None if int(soonest) < 0 else int(soonest)
        return DueReport(int(now), due, soonest_ms, [text(n) for n in lost])

    async def fire(self, queue: str, requests: Sequence[FireRequest]) -> list[FireResult]:
        calls = [self._fire_call(queue, r) for r in requests]
        results: list[FireResult] = []
        for reply in await self._broker.scripts.run_many(self._redis, calls):
            if isinstance(reply, Exception):
                raise reply
            status = text(reply[0])
            if status == "fired":
                results.append(FireResult(status, int(reply[1]), int(reply[2])))
            else:
                results.append(FireResult(status))
        return results

    def _fire_call(self, queue: str, request: FireRequest) -> ScriptCall:
        keys = self._broker.keys(queue)
        band = request.ticks[0][1].priority if request.ticks else 0
        key_list = [
            keys.stream(band),
            keys.index,
            keys.bodies,
            keys.stats,
            keys.idle,
            keys.periodic,
            keys.periodic_next,
            keys.periodic_last,
            keys.periodic_log(request.name),
            *(keys.processed(message.id) for _, message in request.ticks),
        ]
        args: list[str | bytes | int] = [
            request.name,
            request.definition,
            "" if request.expected_next_ms is None else request.expected_next_ms,
            request.next_ms,
            "1" if request.overlap_skip else "0",
            keys.channel,
            band,
        ]
        for tick_ms, message in request.ticks:
            args += [tick_ms, message.id, encode(message)]
        return self._scripts.fire, key_list, args

    # -- admin ------------------------------------------------------------------

    async def schedules(self, queue: str | None = None) -> list[PeriodicInfo]:
        """Every schedule of ``queue`` (or of every known queue), by queue and name."""
        queues = [queue] if queue is not None else await self._broker.known_queues()
        pipe = self._redis.pipeline(transaction=False)
        for name in queues:
            keys = self._broker.keys(name)
            pipe.hgetall(keys.periodic)
            pipe.zrange(keys.periodic_next, 0, -1, withscores=True)
            pipe.hgetall(keys.periodic_seen)
            pipe.hgetall(keys.periodic_last)
            pipe.smembers(keys.periodic_paused)
        # A key someone overwrote with another type reads as empty: one bad queue must
        # not take the whole listing (and the UI page) down.
        replies = [
            _empty_if_error(r, i % 5)
            for i, r in enumerate(await pipe.execute(raise_on_error=False))
        ]
        # Orphaned is judged on this process' clock against a seen time Redis wrote: a
        # skew of seconds does not matter next to the minute it takes, and the UI's
        # read-only Redis user may not run TIME (docs/security.md).
        now_ms = time.time_ns() // 1_000_000
        found: list[tuple[str, str, str, dict[str, Any]]] = []
        for n, name in enumerate(queues):
            defs, nexts, seen, last, paused = replies[5 * n : 5 * n + 5]
            scores = {text(k): int(v) for k, v in nexts}
            seen_ms = {text(k): int(v) for k, v in seen.items()}
            lasts = {text(k): text(v) for k, v in last.items()}
            paused_names = {text(p) for p in paused}
            for raw_name, raw_def in sorted(defs.items()):
                sched = text(raw_name)
                state = {
                    "next": scores.get(sched),
                    "seen": seen_ms.get(sched, 0),
                    "last": lasts.get(sched),
                    "paused": sched in paused_names,
                }
                found.append((name, sched, text(raw_def), state))
        logs = await self._logs([(q, s) for q, s, _, _ in found])
        return [
            _info(q, s, d, st, now_ms, runs)
            for (q, s, d, st), runs in zip(found, logs, strict=True)
        ]

    async def _now_ms(self) -> int:
        # TIME is keyless: on a cluster it goes to one node (the trigger's id and
        # created time only need a plausible "now"); it cannot ride in a cluster pipeline.
        reply = await self._redis.time()
        if isinstance(reply, dict):  # a client that asked several nodes
            reply = next(iter(reply.values()))
        seconds, micros = reply
        return int(seconds) * 1000 + int(micros) // 1000

    async def _logs(self, pairs: Sequence[tuple[str, str]]) -> list[list[Any]]:
        if not pairs:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for queue, name in pairs:
            pipe.lrange(self._broker.keys(queue).periodic_log(name), 0, 19)
        replies = await pipe.execute(raise_on_error=False)
        return [[] if isinstance(r, Exception) else r for r in replies]

    async def pause(self, name: str, queue: str) -> bool:
        keys = self._broker.keys(queue)
        if not await self._redis.hexists(keys.periodic, name):
            return False
        # No MULTI (the admin ACL of docs/security.md has no @transaction), and none
        # needed: once the name is paused a declare cannot re-add its fire time, and a
        # fire script running between the two commands finds no fire time after them.
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(keys.periodic_paused, name)
        pipe.zrem(keys.periodic_next, name)
        await pipe.execute()
        return True

    async def resume(self, name: str, queue: str) -> bool:
        """Resume from the first tick after now: ticks missed while paused never run."""
        keys = self._broker.keys(queue)
        if not await self._redis.hexists(keys.periodic, name):
            return False
        pipe = self._redis.pipeline(transaction=False)  # order is enough, as in pause
        pipe.srem(keys.periodic_paused, name)
        pipe.zadd(keys.periodic_next, {name: 0})
        pipe.publish(keys.channel, "s:0")  # wake schedulers to start it
        await pipe.execute()
        return True

    async def trigger(self, name: str, queue: str) -> TaskInfo:
        """Run the schedule's task now, outside the schedule (its next run stays)."""
        keys = self._broker.keys(queue)
        stored = await self._redis.hget(keys.periodic, name)
        if stored is None:
            raise PeriodicNotFoundError(name, queue)
        definition = Definition.parse(name, queue, text(stored))
        now_ms = await self._now_ms()
        message = definition.message(f"periodic:{name}:manual-{new_task_id()}", now_ms)
        request = FireRequest(
            name=name,
            definition=definition.text,
            expected_next_ms=None,
            next_ms=0,
            overlap_skip=False,
            ticks=[(now_ms, message)],
        )
        (result,) = await self.fire(queue, [request])
        if result.status != "fired" or result.fired != 1:
            raise PeriodicNotFoundError(name, queue)
        return TaskInfo(message.id, queue, TaskState.PENDING)

    async def delete(self, name: str, queue: str) -> bool:
        """Forget a schedule (its runs already enqueued stay). A live worker that still
        declares it declares it again at once (see periodic_due.lua)."""
        keys = self._broker.keys(queue)
        # The definition goes first: from then on no script fires or lists the schedule
        # (no MULTI, as in pause).
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(keys.periodic, name)
        pipe.zrem(keys.periodic_next, name)
        pipe.hdel(keys.periodic_seen, name)
        pipe.hdel(keys.periodic_last, name)
        pipe.srem(keys.periodic_paused, name)
        pipe.delete(keys.periodic_log(name))
        replies = await pipe.execute()
        return bool(replies[0])

    async def keys_of(self, queue: str) -> list[str]:
        """Every periodic key of ``queue`` (for delete_queue)."""
        keys = self._broker.keys(queue)
        names = [text(n) for n in await self._redis.hkeys(keys.periodic)]
        return keys.periodic_keys(names)


def _empty_if_error(reply: Any, kind: int) -> Any:
    if not isinstance(reply, Exception):
        return reply
    return [] if kind == 1 else set() if kind == 4 else {}


def _ms_time(ms: int | None) -> datetime | None:
    return None if ms is None or ms <= 0 else datetime.fromtimestamp(ms / 1000, UTC)


def _info(
    queue: str, name: str, stored: str, state: dict[str, Any], now_ms: int, log: list[Any]
) -> PeriodicInfo:
    runs = tuple(r for r in (_run(text(entry)) for entry in log) if r is not None)
    last_run = last_task = None
    if state["last"]:
        tick, _, last_task = state["last"].partition("|")
        last_run = _ms_time(int(tick)) if tick.isdigit() else None
    orphaned = now_ms - state["seen"] > ORPHANED_AFTER_S * 1000
    try:
        definition = Definition.parse(name, queue, stored)
    except ConfigurationError as exc:
        raw: Any = {}
        with_error: str | None = str(exc)
        with contextlib.suppress(ValueError):
            raw = json.loads(stored)
        task_type = str(raw.get("type", "?")) if isinstance(raw, dict) else "?"
        return PeriodicInfo(
            name=name, type=task_type, queue=queue, cron=None, every=None, tz="UTC",
            next_run=None, last_run=last_run, last_task_id=last_task or None,
            paused=state["paused"], orphaned=orphaned, runs=runs, error=with_error,
        )  # fmt: skip
    every_ms = definition.spec.every_ms
    return PeriodicInfo(
        name=name,
        type=definition.type,
        queue=queue,
        cron=definition.spec.cron,
        every=None if every_ms is None else every_ms / 1000,
        tz=definition.spec.tz,
        next_run=None if state["paused"] else _ms_time(state["next"]),
        last_run=last_run,
        last_task_id=last_task or None,
        paused=state["paused"],
        orphaned=orphaned,
        catchup=definition.catchup,
        overlap=definition.overlap,
        runs=runs,
    )


def _run(entry: str) -> PeriodicRun | None:
    parts = entry.split("|", 3)
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    tick = _ms_time(int(parts[0]))
    at = _ms_time(int(parts[1]))
    if tick is None or at is None:
        return None
    return PeriodicRun(tick=tick, at=at, outcome=parts[2], task_id=parts[3])
