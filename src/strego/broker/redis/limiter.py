"""RedisLimiter: global limiters' state in Redis (lua/limit_*.lua), for the worker.

Each limiter key's state lives in its own hash-tagged keys (see keys.LimitKeys), so
every call is one script in one slot. The park that may follow a refusal is another
script in the queue's slot: the pair is made idempotent (bookings by task id, slots by
delivery) rather than atomic, so it works on Redis Cluster too.

Requests made while others are in flight are sent together: one script call per
limiter key for all of them, every call in one pipeline (like the worker's acks). A
busy worker asks for many tasks at the cost of about one.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


class RedisLimiter:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._prefix = broker.config.prefix
        # Queue-wide limits this worker declared: fetch.lua checks them (see fetch()).
        self.queue_limits: dict[str, list[Limit]] = {}
        self._queued: list[_Request] = []
        self._sender: asyncio.Task[None] | None = None

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


def _fail(requests: Sequence[_Request], exc: Exception) -> None:
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
