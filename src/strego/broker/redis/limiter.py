"""RedisLimiter: global limiters' state in Redis (lua/limit_*.lua), for the worker.

Each limiter key's state lives in its own hash-tagged keys (see keys.LimitKeys), so
every call is one script in one slot. The park that may follow a refusal is another
script in the queue's slot: the pair is made idempotent (bookings by task id, slots by
delivery) rather than atomic, so it works on Redis Cluster too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from strego.broker.limiting import Slot
from strego.broker.redis.keys import LimitKeys
from strego.broker.redis.scripts import ScriptCall
from strego.limits import ConcurrencyLimit, Limit, RateLimit

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["RedisLimiter", "fetch_limit_args", "limit_meta"]

_META_TTL_S = 86400 * 7


class RedisLimiter:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._prefix = broker.config.prefix
        # Queue-wide limits this worker declared: fetch.lua checks them (see fetch()).
        self.queue_limits: dict[str, list[Limit]] = {}

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
        self, limit: Limit, scope: str | None, key: str, queue: str, task_id: str, member: str
    ) -> float:
        scripts = self._broker.scripts
        keys = self.keys(limit, scope).per_key(key)
        booking = f"{queue}|{task_id}"
        if isinstance(limit, RateLimit):
            interval = limit.interval_ms
            args: list[str | int | float] = [
                booking,
                f"{interval:.6f}",
                f"{interval * (limit.burst - 1):.6f}",
                key,
            ]
            wait_ms = await scripts.limit_rate(self._broker.redis, keys, args)
        else:
            args = [member, limit.limit, self._lease_ms, key, booking]
            wait_ms = await scripts.limit_acquire(self._broker.redis, keys, args)
        return int(wait_ms) / 1000

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        await self._run(self._broker.scripts.limit_release, slots, [int(ran)])

    async def renew(self, slots: Sequence[Slot]) -> None:
        await self._run(self._broker.scripts.limit_renew, slots, [self._lease_ms])

    async def _run(self, script: object, slots: Sequence[Slot], head: list[int]) -> None:
        grouped: dict[tuple[LimitKeys, str], list[str]] = {}
        for slot in slots:
            grouped.setdefault((self.keys(slot.limit, slot.scope), slot.key), []).append(
                slot.member
            )
        calls: list[ScriptCall] = [
            (script, keys.per_key(key), [*head, *members])  # type: ignore[misc]
            for (keys, key), members in grouped.items()
        ]
        for reply in await self._broker.scripts.run_many(self._broker.redis, calls):
            if isinstance(reply, Exception):
                raise reply


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
