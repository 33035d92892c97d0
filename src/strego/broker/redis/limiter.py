"""RedisLimiter: global limiters' state in Redis (lua/limit_*.lua), for the worker.

Each limiter key's state lives in its own hash-tagged keys (see keys.LimitKeys), so
every call is one script in one slot. The park that may follow a refusal is another
script in the queue's slot: the pair is made idempotent (bookings by task id, slots by
delivery) rather than atomic, so it works on Redis Cluster too.

Calls are batched (limit_calls.py: one script call per limiter key for every request
of a loop turn, all in one pipeline) and ride on the worker's fetch where they can
(:meth:`RedisLimiter.ride_along`): the releases queued meanwhile, the starts taken
ahead for the fetch's own tasks, and the top-ups and releases of the worker's pool of
concurrency slots (limit_ahead.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strego.broker.limiting import Slot, Verdict
from strego.broker.redis.keys import LimitKeys
from strego.broker.redis.limit_ahead import Take, TakeAhead
from strego.broker.redis.limit_calls import Arg, Call, CallQueue, text
from strego.broker.redis.scripts import Script, ScriptCall
from strego.limits import ConcurrencyLimit, Limit, RateLimit

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["RedisLimiter", "fetch_limit_args", "limit_meta"]

_META_TTL_S = 86400 * 7


@dataclasses.dataclass(slots=True)
class Riders:
    """What a fetch carries for the limiter, in its pipeline after its own calls."""

    calls: list[Call]  # queued releases and give-backs
    takes: list[Take]  # rate starts taken ahead, slots taken for the pool

    @property
    def script_calls(self) -> list[ScriptCall]:
        return [call.script_call for call in self.calls] + [call for call, _ in self.takes]


class RedisLimiter:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._prefix = broker.config.prefix
        # Queue-wide limits this worker declared: fetch.lua checks them (see fetch()).
        self.queue_limits: dict[str, list[Limit]] = {}
        self._fetch_args: dict[str, tuple[list[str], list[str | int]]] = {}
        self._keys: dict[tuple[str, str | None, str], tuple[str, ...]] = {}
        self._calls = CallQueue(broker)
        self._ahead = TakeAhead(broker, self._calls, self._key_names)
        # The release call queued per (limit name, scope, key, ran): found without
        # building its keys (see release_soon).
        self._releasing: dict[tuple[str, str | None, str, bool], Call] = {}

    @property
    def _lease_ms(self) -> int:
        return int(self._broker.config.claim_stale_after_s * 1000)

    def keys(self, limit: Limit, scope: str | None) -> LimitKeys:
        return LimitKeys(self._prefix, limit.name, scope)

    async def declare(self, limits: Sequence[tuple[Limit, str | None]]) -> None:
        """Record the limits for Inspector.limits(); from now on this broker's fetch
        checks the queue-wide ones inside the fetch script."""
        for limit, scope in limits:
            if scope is not None:
                self.queue_limits.setdefault(scope, [])
                if limit not in self.queue_limits[scope]:
                    self.queue_limits[scope].append(limit)
                self._fetch_args.pop(scope, None)
        redis = self._broker.redis
        pipe = redis.pipeline(transaction=False)
        for limit, scope in limits:
            keys = self.keys(limit, scope)
            pipe.hset(keys.meta, mapping=limit_meta(limit, scope))
            pipe.expire(keys.meta, _META_TTL_S)
        await pipe.execute()
        # The registry is a global key: never touched by a script (one slot each).
        declared = [f"{scope or ''}\t{limit.name}" for limit, scope in limits]
        if declared:
            await redis.sadd(LimitKeys.declared(self._prefix), *declared)

    async def ask(
        self,
        limit: Limit,
        scope: str | None,
        key: str,
        queue: str,
        task_id: str,
        member: str,
        *,
        max_wait_s: float = 0.0,
    ) -> Verdict:
        scripts = self._broker.scripts
        keys = self._key_names(limit, scope, key)
        booking = f"{queue}|{task_id}"
        if isinstance(limit, RateLimit):
            interval = limit.interval_ms
            head: tuple[Arg, ...] = (
                f"{interval:.6f}",
                f"{interval * (limit.burst - 1):.6f}",
                key,
            )
            items: tuple[Arg, ...] = (booking, f"{max_wait_s * 1000:.3f}")
            us = int(await self._calls.request(scripts.limit_rate, keys, head, items, True))
        else:
            head = (limit.limit, self._lease_ms, key)
            items = (member, booking)
            us = int(await self._calls.request(scripts.limit_acquire, keys, head, items, True))
        # The scripts answer 0 (now), > 0 (reserved: start then), < 0 (come back then).
        return Verdict(abs(us) / 1e6, reserved=us > 0)

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        await self.release_soon(slots, ran=ran)

    def release_soon(self, slots: Sequence[Slot], *, ran: bool = True) -> asyncio.Future[Any]:
        """:meth:`release`, queued now (not on the caller's next turn): a fetch built
        in this loop turn carries it (see :meth:`ride_along`). Releases queued together
        share one call per limiter key, and one future."""
        if len(slots) != 1:
            return self._per_key(self._broker.scripts.limit_release, slots, (int(ran),))
        slot = slots[0]  # the usual: one task's one slot, queued many times a second
        found = (slot.limit.name, slot.scope, slot.key, ran)
        call = self._releasing.get(found)
        if call is None or call.sent:
            keys = self._key_names(slot.limit, slot.scope, slot.key)
            call = self._calls.call(self._broker.scripts.limit_release, keys, (int(ran),), False)
            if len(self._releasing) > 4096:
                self._releasing.clear()
            self._releasing[found] = call
        call.items.append(slot.member)
        return call.shared_reply()

    def put_back(self, limits: Sequence[Limit]) -> None:
        """A task that took pool slots with :meth:`take_ahead` ended (no call)."""
        self._ahead.put_back(limits)

    async def release_held(self) -> None:
        """Release the pool slots no task uses (at shutdown)."""
        released = self._ahead.release_all()
        if released:
            await asyncio.gather(*released, return_exceptions=True)

    async def renew(self, slots: Sequence[Slot]) -> None:
        """Renew slots (and the worker's pool slots); add up the starts made on pool
        slots."""
        script = self._broker.scripts.limit_renew
        head = (self._lease_ms,)
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in slots:
            keys = self._key_names(slot.limit, slot.scope, slot.key)
            grouped.setdefault(keys, []).append(slot.member)
        for keys, members in self._ahead.held():
            grouped.setdefault(keys, []).extend(members)
        calls: list[ScriptCall] = [
            (script, keys, [*head, *found]) for keys, found in grouped.items()
        ]
        count = self._broker.scripts.limit_ahead
        calls += [(count, keys, args) for keys, args in self._ahead.counts()]
        sent = time.monotonic()
        replies = await self._broker.scripts.run_many(self._broker.redis, calls)
        for keys, reply in zip(grouped, replies, strict=False):
            if isinstance(reply, Exception):
                raise reply
            self._ahead.renewed(keys, [text(member) for member in reply], sent)

    def _per_key(
        self, script: Script, slots: Sequence[Slot], head: tuple[Arg, ...]
    ) -> asyncio.Future[Any]:
        if not slots:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in slots:
            keys = self._key_names(slot.limit, slot.scope, slot.key)
            grouped.setdefault(keys, []).append(slot.member)
        replies = {
            self._calls.request(script, keys, head, tuple(members), False)
            for keys, members in grouped.items()
        }
        return replies.pop() if len(replies) == 1 else asyncio.gather(*replies)

    def _key_names(self, limit: Limit, scope: str | None, key: str) -> tuple[str, ...]:
        """A limiter key's Redis keys (kept: asked for every task)."""
        found = self._keys.get((limit.name, scope, key))
        if found is None:
            if len(self._keys) > 4096:  # keyed limiters: many keys, each used a while
                self._keys.clear()
            found = tuple(self.keys(limit, scope).per_key(key))
            self._keys[(limit.name, scope, key)] = found
        return found

    # -- riding on the fetch -----------------------------------------------------------

    def take_ahead(self, limit: Limit) -> bool:
        """Whether a start the last fetch took ahead, or a slot of the worker's pool,
        was there for a task of ``limit`` (an unkeyed task-type limit); False: ask."""
        return self._ahead.take(limit)

    def fetch_args(self, queue: str) -> tuple[list[str], list[str | int]]:
        """The extra KEYS and ARGV of fetch.lua for ``queue``'s own limits (cached)."""
        found = self._fetch_args.get(queue)
        if found is None:
            limits = self.queue_limits.get(queue)
            found = ([], [])
            if limits:
                found = fetch_limit_args(self._prefix, queue, limits, self._lease_ms)
            self._fetch_args[queue] = found
        return found

    def ride_along(self, count: int) -> Riders:
        """Script calls for a fetch of ``count`` tasks to carry in its pipeline: the
        releases (and give-backs) queued now, and what its tasks will need taken
        ahead."""
        self._ahead.give_back_now()
        takes = self._ahead.requests(count)  # (may queue pool releases: riders too)
        return Riders(self._calls.take_riders(), takes)

    def settle_ride_along(self, riders: Riders, replies: Sequence[Any]) -> None:
        """Hand the fetch pipeline's replies to what rode along."""
        for call, reply in zip(riders.calls, replies, strict=False):
            call.settle(reply)  # a script error: sending it again would not help
        self._ahead.settle(list(zip(riders.takes, replies[len(riders.calls) :], strict=True)))

    def fail_ride_along(self, riders: Riders, exc: BaseException) -> None:
        """The fetch failed (or was cancelled): what rode along is sent on its own."""
        self._calls.requeue(riders.calls)
        self._ahead.fail(riders.takes)


def limit_meta(limit: Limit, scope: str | None) -> dict[str, str]:
    """What Inspector.limits() shows of a limiter's declaration."""
    meta = {"name": limit.name, "limit": str(limit.limit), "queue": scope or ""}
    if isinstance(limit, RateLimit):
        meta |= {"kind": "rate", "per": f"{limit.per_s:g}", "burst": str(limit.burst)}
    else:
        meta |= {"kind": "concurrency"}
    meta["keyed"] = "1" if limit.key is not None else "0"
    return meta


def fetch_limit_args(
    prefix: str, queue: str, limits: Sequence[Limit], lease_ms: int
) -> tuple[list[str], list[str | int]]:
    """The extra KEYS and ARGV of fetch.lua for a queue's own limits."""
    keys: list[str] = []
    args: list[str | int] = []
    for limit in limits:
        keys += LimitKeys(prefix, limit.name, queue).per_key("")
        if isinstance(limit, RateLimit):
            interval = limit.interval_ms
            args += ["r", f"{interval:.6f}", f"{interval * (limit.burst - 1):.6f}", 0]
        else:
            assert isinstance(limit, ConcurrencyLimit)
            args += ["c", limit.limit, lease_ms, 0]
    return keys, args
