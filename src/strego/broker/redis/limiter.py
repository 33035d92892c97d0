"""RedisLimiter: global limiters' state in Redis (lua/limit_*.lua), for the worker.

Each limiter key's state lives in its own hash-tagged keys (see keys.LimitKeys), so
every call is one script in one slot. The park that may follow a refusal is another
script in the queue's slot: the pair is made idempotent (bookings by task id, slots by
delivery) rather than atomic, so it works on Redis Cluster too.

Requests made while others are in flight are sent together: one script call per
limiter key for all of them, every call in one pipeline (like the worker's acks). A
busy worker asks for many tasks at the cost of about one.

Riding on the fetch (see :meth:`RedisLimiter.ride_along`): a worker's fetch pipeline
also carries the releases queued meanwhile, and for each unkeyed task-type limit the
recent fetches' tasks counted against, a request taking starts or slots ahead for the
share of the fetched tasks expected to need them. The tasks of that fetch use them
(:meth:`RedisLimiter.take_ahead`) without a round trip of their own; what they leave
is given back right after (a rate start only while nobody else was granted since, so
the limiter's state is as if it had never been taken). No start is kept for later: a
start taken ahead is used within the event-loop turns that handle its fetch, the same
delay as a start asked for after the fetch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from strego.broker.limiting import Slot, Verdict
from strego.broker.redis.keys import LimitKeys
from strego.broker.redis.scripts import Script, ScriptCall
from strego.limits import ConcurrencyLimit, Limit, RateLimit

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["RedisLimiter", "fetch_limit_args", "limit_meta"]

_META_TTL_S = 86400 * 7
Arg = str | int | float


@dataclasses.dataclass(slots=True)
class _Request:
    script: Script
    keys: tuple[str, ...]
    head: tuple[Arg, ...]  # the arguments every request of one call shares
    items: tuple[Arg, ...]  # this request's own (one task, or members to release)
    reply: asyncio.Future[Any]
    one_each: bool  # the script answers one value per request (else: nothing needed)


@dataclasses.dataclass(slots=True)
class _Ahead:
    """Starts or slots one fetch took ahead for one limit, until its tasks have asked."""

    limit: Limit
    keys: tuple[str, ...]
    starts: int = 0  # a rate limiter's starts left
    fence: str = ""  # the arrival time the take left (the give-back's fence)
    members: list[str] = dataclasses.field(default_factory=list)  # concurrency slots left


class RedisLimiter:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._prefix = broker.config.prefix
        # Queue-wide limits this worker declared: fetch.lua checks them (see fetch()).
        self.queue_limits: dict[str, list[Limit]] = {}
        self._queued: list[_Request] = []
        self._sender: asyncio.Task[None] | None = None
        # Taking ahead (see ride_along): per unkeyed task-type limit, the tasks that
        # asked it since the last fetch; what the last fetch took ahead; its size.
        self._wanted: dict[Limit, int] = {}
        self._ahead: dict[Limit, _Ahead] = {}
        self._fetched = 0
        self._tag = f"a|{broker.config.consumer}|{os.urandom(3).hex()}|"
        self._seq = 0
        self._fetch_args: dict[str, tuple[list[str], list[str | int]]] = {}

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
        keys = tuple(self.keys(limit, scope).per_key(key))
        booking = f"{queue}|{task_id}"
        if isinstance(limit, RateLimit):
            interval = limit.interval_ms
            head: tuple[Arg, ...] = (
                f"{interval:.6f}",
                f"{interval * (limit.burst - 1):.6f}",
                key,
                f"{max_wait_s * 1000:.3f}",
            )
            items: tuple[Arg, ...] = (booking, int(max_wait_s > 0))
            us = int(await self._request(scripts.limit_rate, keys, head, items, True))
        else:
            head = (limit.limit, self._lease_ms, key)
            items = (member, booking)
            us = int(await self._request(scripts.limit_acquire, keys, head, items, True))
        # The scripts answer 0 (now), > 0 (reserved: start then), < 0 (come back then).
        return Verdict(abs(us) / 1e6, reserved=us > 0)

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        await self._per_key(self._broker.scripts.limit_release, slots, (int(ran),))

    def release_soon(self, slots: Sequence[Slot], *, ran: bool = True) -> asyncio.Future[Any]:
        """:meth:`release`, queued now (not on the caller's next turn): a fetch built
        in this loop turn carries it (see :meth:`ride_along`)."""
        script = self._broker.scripts.limit_release
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in slots:
            keys = tuple(self.keys(slot.limit, slot.scope).per_key(slot.key))
            grouped.setdefault(keys, []).append(slot.member)
        head = (int(ran),)
        replies = [
            self._request(script, keys, head, tuple(members), False)
            for keys, members in grouped.items()
        ]
        return replies[0] if len(replies) == 1 else asyncio.gather(*replies)

    # -- taking ahead, riding on the fetch ---------------------------------------------

    def take_ahead(self, limit: Limit) -> str | None:
        """A start (``''``) or a slot (its member) the last fetch took ahead for
        ``limit`` (an unkeyed task-type limit), or None: then ask. Counts the demand
        that decides what the next fetch takes ahead."""
        self._wanted[limit] = self._wanted.get(limit, 0) + 1
        ahead = self._ahead.get(limit)
        if ahead is None:
            return None
        if ahead.starts > 0:
            ahead.starts -= 1
            return ""
        return ahead.members.pop() if ahead.members else None

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

    def ride_along(self, count: int) -> list[tuple[ScriptCall, list[_Request] | _Ahead]]:
        """Script calls for a fetch of ``count`` tasks to carry in its pipeline: the
        releases queued now, and takes ahead for the unkeyed task-type limits the
        previous fetch's tasks asked (for the same share of this fetch's tasks)."""
        calls: list[tuple[ScriptCall, list[_Request] | _Ahead]] = []
        if self._queued:
            asks: list[_Request] = []
            grouped: dict[tuple[Script, tuple[str, ...], tuple[Arg, ...]], list[_Request]] = {}
            for request in self._queued:
                if request.one_each:  # an ask: sent on its own (its tasks wait for it)
                    asks.append(request)
                else:
                    grouped.setdefault((request.script, request.keys, request.head), []).append(
                        request
                    )
            self._queued = asks
            for (script, keys, head), requests in grouped.items():
                items = [arg for r in requests for arg in r.items]
                calls.append(((script, keys, [*head, *items]), requests))
        wanted, fetched = self._wanted, self._fetched
        self._wanted, self._fetched = {}, count
        if not wanted or fetched <= 0:
            return calls
        script = self._broker.scripts.limit_ahead
        for limit, asked in wanted.items():
            n = min(count, math.ceil(count * asked / fetched))
            keys = tuple(self.keys(limit, None).per_key(""))
            ahead = _Ahead(limit, keys)
            if isinstance(limit, RateLimit):
                interval = limit.interval_ms
                args: list[Arg] = ["r", f"{interval:.6f}", f"{interval * (limit.burst - 1):.6f}", n]
            else:
                self._seq += 1
                ahead.members = [f"{self._tag}{self._seq}.{i}" for i in range(n)]
                args = ["c", limit.limit, self._lease_ms, *ahead.members]
            calls.append(((script, keys, args), ahead))
        return calls

    def settle_ride_along(
        self, calls: Sequence[tuple[ScriptCall, list[_Request] | _Ahead]], replies: Sequence[Any]
    ) -> None:
        """Hand the replies to what rode along; what was taken ahead is usable until the
        fetch's tasks have asked (two loop turns: they start on the next), then given
        back."""
        taken: dict[Limit, _Ahead] = {}
        for (_, rider), reply in zip(calls, replies, strict=True):
            if isinstance(rider, list):
                if isinstance(reply, Exception):
                    _fail(rider, reply)
                    continue
                for request in rider:
                    if not request.reply.done():
                        request.reply.set_result(None)
            elif isinstance(reply, Exception):
                continue  # nothing taken ahead: its tasks ask
            elif isinstance(rider.limit, RateLimit):
                rider.starts, rider.fence = int(reply[0]), _text(reply[1])
                if rider.starts:
                    taken[rider.limit] = rider
            elif int(reply):
                taken[rider.limit] = rider
        self._ahead = taken
        if taken:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._give_back, taken)

    def fail_ride_along(
        self, calls: Sequence[tuple[ScriptCall, list[_Request] | _Ahead]], exc: BaseException
    ) -> None:
        for _, rider in calls:
            if isinstance(rider, list):
                _fail(rider, exc)

    def _give_back(self, taken: dict[Limit, _Ahead]) -> None:
        """Return what a fetch took ahead and its tasks did not use."""
        if self._ahead is taken:
            self._ahead = {}
        scripts = self._broker.scripts
        for ahead in taken.values():
            if ahead.starts:
                rate = ahead.limit
                interval = f"{rate.interval_ms:.6f}" if isinstance(rate, RateLimit) else "0"
                head: tuple[Arg, ...] = ("g", interval, ahead.starts, ahead.fence)
                _quiet(self._request(scripts.limit_ahead, ahead.keys, head, (), False))
            elif ahead.members:
                head = (0,)
                members = tuple(ahead.members)
                _quiet(self._request(scripts.limit_release, ahead.keys, head, members, False))
            ahead.starts, ahead.members = 0, []

    async def renew(self, slots: Sequence[Slot]) -> None:
        await self._per_key(self._broker.scripts.limit_renew, slots, (self._lease_ms,))

    async def _per_key(self, script: Script, slots: Sequence[Slot], head: tuple[Arg, ...]) -> None:
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in slots:
            keys = tuple(self.keys(slot.limit, slot.scope).per_key(slot.key))
            grouped.setdefault(keys, []).append(slot.member)
        await asyncio.gather(
            *[
                self._request(script, keys, head, tuple(members), False)
                for keys, members in grouped.items()
            ]
        )

    def _request(
        self,
        script: Script,
        keys: tuple[str, ...],
        head: tuple[Arg, ...],
        items: tuple[Arg, ...],
        one_each: bool,
    ) -> asyncio.Future[Any]:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append(_Request(script, keys, head, items, reply, one_each))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return reply

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the tasks of this loop iteration add their requests
        while self._queued:
            batch, self._queued = self._queued, []
            calls: dict[tuple[Script, tuple[str, ...], tuple[Arg, ...]], list[_Request]] = {}
            for request in batch:
                calls.setdefault((request.script, request.keys, request.head), []).append(request)
            script_calls: list[ScriptCall] = [
                (script, keys, [*head, *[arg for r in requests for arg in r.items]])
                for (script, keys, head), requests in calls.items()
            ]
            try:
                replies = await self._broker.scripts.run_many(self._broker.redis, script_calls)
            except Exception as exc:
                _fail(batch, exc)
                continue
            for requests, reply in zip(calls.values(), replies, strict=True):
                if isinstance(reply, Exception):
                    _fail(requests, reply)
                    continue
                for n, request in enumerate(requests):
                    if not request.reply.done():
                        request.reply.set_result(reply[n] if request.one_each else None)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _quiet(reply: asyncio.Future[Any]) -> None:
    """A give-back that fails leaves the start spent or the slot to expire: safe."""
    reply.add_done_callback(lambda done: done.cancelled() or done.exception())


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for request in requests:
        if not request.reply.done():
            request.reply.set_exception(exc)


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
