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
class _Call:
    """One script call for one limiter key, gathering every request queued for it
    until it is sent."""

    script: Script
    keys: tuple[str, ...]
    head: tuple[Arg, ...]  # the arguments every request of the call shares
    one_each: bool  # the script answers one value per request (an ask), else none needed
    items: list[Arg] = dataclasses.field(default_factory=list)  # the requests' own
    sent: bool = False  # taken from the queue: add nothing more to it
    # One per request when one_each (reply n answers request n), else one for all.
    replies: list[asyncio.Future[Any]] = dataclasses.field(default_factory=list)

    def settle(self, reply: Any) -> None:
        if isinstance(reply, BaseException):
            self.fail(reply)
            return
        for n, future in enumerate(self.replies):
            if not future.done():
                future.set_result(reply[n] if self.one_each else None)

    def fail(self, exc: BaseException) -> None:
        for future in self.replies:
            if not future.done():
                future.set_exception(exc)


@dataclasses.dataclass(slots=True)
class _Ahead:
    """Starts or slots one fetch took ahead for one limit, until its tasks have asked."""

    limit: Limit
    keys: tuple[str, ...]
    starts: int = 0  # a rate limiter's starts left
    fence: str = ""  # the arrival time the take left (the give-back's fence)
    members: list[str] = dataclasses.field(default_factory=list)  # concurrency slots left
    reused: int = 0  # of them, spares passed on (at the end: handed out first)
    total: int = 0  # how many members there were


class RedisLimiter:
    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._prefix = broker.config.prefix
        # Queue-wide limits this worker declared: fetch.lua checks them (see fetch()).
        self.queue_limits: dict[str, list[Limit]] = {}
        self._queued: dict[tuple[Script, tuple[str, ...], tuple[Arg, ...]], _Call] = {}
        self._keys: dict[tuple[str, str | None, str], tuple[str, ...]] = {}
        # The release call queued per (limit name, scope, key, ran): found without
        # building its keys (see release_soon).
        self._releasing: dict[tuple[str, str | None, str, bool], _Call] = {}
        self._sender: asyncio.Task[None] | None = None
        # Taking ahead (see ride_along): per unkeyed task-type limit, the tasks that
        # asked it since the last fetch; what the last fetch took ahead; its size.
        self._wanted: dict[str, int] = {}  # by limit name
        self._limits: dict[str, Limit] = {}
        self._ahead: dict[str, _Ahead] = {}
        self._fetched = 0
        self._tag = f"a|{broker.config.consumer}|{os.urandom(3).hex()}|"
        self._seq = 0
        self._fetch_args: dict[str, tuple[list[str], list[str | int]]] = {}
        # Slots taken ahead whose task ended: still held in Redis, passed to the tasks
        # of the next fetch if one is built within two loop turns, else released.
        self._spares: dict[str, list[Slot]] = {}  # by limit name
        self._spared: asyncio.Future[Any] | None = None  # resolved when they are settled
        self._kept: dict[str, _Ahead] = {}  # spares the fetch in flight will hand out
        self._lost: set[str] = set()  # taken-ahead members a renewal found gone
        self._reused: dict[str, int] = {}  # starts on passed-on slots, not yet counted

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
            us = int(await self._request(scripts.limit_rate, keys, head, items, True))
        else:
            head = (limit.limit, self._lease_ms, key)
            items = (member, booking)
            us = int(await self._request(scripts.limit_acquire, keys, head, items, True))
        # The scripts answer 0 (now), > 0 (reserved: start then), < 0 (come back then).
        return Verdict(abs(us) / 1e6, reserved=us > 0)

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        await self.release_soon(slots, ran=ran)

    def release_soon(self, slots: Sequence[Slot], *, ran: bool = True) -> asyncio.Future[Any]:
        """:meth:`release`, queued now (not on the caller's next turn): a fetch built
        in this loop turn carries it (see :meth:`ride_along`). Releases queued together
        share one call per limiter key, and one future."""
        if len(slots) != 1:
            rest = [s for s in slots if not (s.member.startswith(self._tag) and self._spare(s))]
            release = self._per_key(self._broker.scripts.limit_release, rest, (int(ran),))
            spared = self._spared
            if spared is None or len(rest) == len(slots):
                return release
            return spared if not rest else asyncio.gather(release, spared)
        slot = slots[0]  # the usual: one task's one slot, queued many times a second
        if slot.member.startswith(self._tag) and self._spare(slot):
            assert self._spared is not None
            return self._spared
        found = (slot.limit.name, slot.scope, slot.key, ran)
        call = self._releasing.get(found)
        if call is not None and not call.sent:
            call.items.append(slot.member)
            return call.replies[0]
        keys = self._key_names(slot.limit, slot.scope, slot.key)
        head = (int(ran),)
        script = self._broker.scripts.limit_release
        reply = self._request(script, keys, head, (slot.member,), False)
        if len(self._releasing) > 4096:
            self._releasing.clear()
        self._releasing[found] = self._queued[(script, keys, head)]
        return reply

    async def renew(self, slots: Sequence[Slot]) -> None:
        spares = [slot for found in self._spares.values() for slot in found]
        script = self._broker.scripts.limit_renew
        head = (self._lease_ms,)
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in [*slots, *spares]:
            grouped.setdefault(self._key_names(slot.limit, slot.scope, slot.key), []).append(
                slot.member
            )
        calls: list[ScriptCall] = [
            (script, keys, [*head, *found]) for keys, found in grouped.items()
        ]
        count = self._broker.scripts.limit_ahead
        calls += [(count, keys, args) for keys, args in self._counts()]
        replies = await self._broker.scripts.run_many(self._broker.redis, calls)
        for reply in replies[: len(grouped)]:
            if isinstance(reply, Exception):
                raise reply
            # A slot taken ahead that is gone (its keys were deleted) is not passed on.
            self._lost.update(m for m in map(_text, reply) if m.startswith(self._tag))

    def _counts(self) -> list[tuple[tuple[str, ...], tuple[Arg, ...]]]:
        """Add the starts on passed-on slots to their limiters' ``granted`` totals
        (with the renewals, or when the worker goes idle: Inspector's totals lag by
        that much)."""
        reused, self._reused = self._reused, {}
        return [
            (self._key_names(self._limits[name], None, ""), ("n", n)) for name, n in reused.items()
        ]

    def _spare(self, slot: Slot) -> bool:
        """Keep a slot taken ahead for the next fetch's tasks (False: it was lost)."""
        if slot.member in self._lost:
            self._lost.discard(slot.member)
            return False
        self._spares.setdefault(slot.limit.name, []).append(slot)
        if self._spared is None:
            self._spared = asyncio.get_running_loop().create_future()
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._release_spares)
        return True

    def _release_spares(self) -> None:
        """Release the spares no fetch took (two loop turns after the first one)."""
        spared, spares = self._spared, self._spares
        self._spared, self._spares = None, {}
        assert spared is not None
        members: dict[tuple[str, ...], list[str]] = {}
        for found in spares.values():
            for slot in found:
                members.setdefault(self._key_names(slot.limit, None, ""), []).append(slot.member)
        script = self._broker.scripts.limit_release
        replies = [
            self._request(script, keys, (0,), tuple(m), False) for keys, m in members.items()
        ]
        if not replies:
            spared.set_result(None)
            return
        # Going idle (no fetch took them): the starts made on passed-on slots are
        # counted now rather than at the next renewal.
        for keys, args in self._counts():
            _quiet(self._request(self._broker.scripts.limit_ahead, keys, args, (), False))
        sent = replies[0] if len(replies) == 1 else asyncio.gather(*replies)
        sent.add_done_callback(lambda done: _chain(done, spared))

    def _per_key(
        self, script: Script, slots: Sequence[Slot], head: tuple[Arg, ...]
    ) -> asyncio.Future[Any]:
        if not slots:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if len(slots) == 1:  # the usual release: one task's one slot
            slot = slots[0]
            keys = self._key_names(slot.limit, slot.scope, slot.key)
            return self._request(script, keys, head, (slot.member,), False)
        grouped: dict[tuple[str, ...], list[str]] = {}
        for slot in slots:
            keys = self._key_names(slot.limit, slot.scope, slot.key)
            grouped.setdefault(keys, []).append(slot.member)
        replies = {
            self._request(script, keys, head, tuple(members), False)
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

    # -- taking ahead, riding on the fetch ---------------------------------------------

    def take_ahead(self, limit: Limit) -> str | None:
        """A start (``''``) or a slot (its member) the last fetch took ahead for
        ``limit`` (an unkeyed task-type limit), or None: then ask. Counts the demand
        that decides what the next fetch takes ahead."""
        name = limit.name  # a limiter is its name (hashing the dataclass costs more)
        if name not in self._limits:
            self._limits[name] = limit
        self._wanted[name] = self._wanted.get(name, 0) + 1
        ahead = self._ahead.get(name)
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

    def ride_along(self, count: int) -> list[tuple[ScriptCall, _Call | _Ahead]]:
        """Script calls for a fetch of ``count`` tasks to carry in its pipeline: the
        releases queued now, and takes ahead for the unkeyed task-type limits the
        previous fetch's tasks asked (for the same share of this fetch's tasks)."""
        calls: list[tuple[ScriptCall, _Call | _Ahead]] = []
        if self._queued:
            asks = {}
            for found, call in self._queued.items():
                if call.one_each:  # an ask: sent on its own (its tasks wait for it)
                    asks[found] = call
                else:
                    call.sent = True
                    calls.append(((call.script, call.keys, [*call.head, *call.items]), call))
            self._queued = asks
        wanted, fetched = self._wanted, self._fetched
        self._wanted, self._fetched = {}, count
        if not wanted or fetched <= 0:
            return calls
        script = self._broker.scripts.limit_ahead
        for name, asked in wanted.items():
            limit = self._limits[name]
            n = min(count, math.ceil(count * asked / fetched))
            keys = self._key_names(limit, None, "")
            ahead = _Ahead(limit, keys)
            if isinstance(limit, RateLimit):
                interval = limit.interval_ms
                args: list[Arg] = ["r", f"{interval:.6f}", f"{interval * (limit.burst - 1):.6f}", n]
                calls.append(((script, keys, args), ahead))
                continue
            spares = self._spares.get(name)
            if spares:  # slots the last tasks held: passed on without asking Redis
                kept = _Ahead(limit, keys, members=[s.member for s in spares[-n:]])
                kept.reused = len(kept.members)
                del spares[-n:]
                self._kept[name] = kept
                n -= len(kept.members)
            if n > 0:
                self._seq += 1
                ahead.members = [f"{self._tag}{self._seq}.{i}" for i in range(n)]
                args = ["c", limit.limit, self._lease_ms, *ahead.members]
                calls.append(((script, keys, args), ahead))
        return calls

    def settle_ride_along(
        self, calls: Sequence[tuple[ScriptCall, _Call | _Ahead]], replies: Sequence[Any]
    ) -> None:
        """Hand the replies to what rode along; what was taken ahead is usable until the
        fetch's tasks have asked (two loop turns: they start on the next), then given
        back."""
        if not calls and not self._kept:
            return
        taken, self._kept = self._kept, {}
        for (_, rider), reply in zip(calls, replies, strict=True):
            if isinstance(rider, _Call):
                if isinstance(reply, Exception):  # a script error: sending again won't help
                    rider.fail(reply)
                else:
                    rider.settle(reply)
            elif isinstance(reply, Exception):
                continue  # nothing taken ahead: its tasks ask
            elif isinstance(rider.limit, RateLimit):
                rider.starts, rider.fence = int(reply[0]), _text(reply[1])
                if rider.starts:
                    taken[rider.limit.name] = rider
            elif int(reply):
                kept = taken.get(rider.limit.name)
                if kept is not None:
                    rider.members += kept.members
                    rider.reused = kept.reused
                taken[rider.limit.name] = rider
        self._ahead = taken
        for ahead in taken.values():
            ahead.total = len(ahead.members)
        if taken:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._give_back, taken)

    def fail_ride_along(
        self, calls: Sequence[tuple[ScriptCall, _Call | _Ahead]], exc: BaseException
    ) -> None:
        self._requeue([rider for _, rider in calls if isinstance(rider, _Call)])
        kept, self._kept = self._kept, {}
        for ahead in kept.values():  # spares it would have handed out: released
            members = tuple(ahead.members)
            _quiet(
                self._request(self._broker.scripts.limit_release, ahead.keys, (0,), members, False)
            )

    def _give_back(self, taken: dict[str, _Ahead]) -> None:
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
            elif ahead.total:
                # Handed out last first: the spares passed on are at the end. Starts
                # on them Redis did not see: counted with the next call.
                used = ahead.total - len(ahead.members)
                if min(used, ahead.reused):
                    name = ahead.limit.name
                    self._reused[name] = self._reused.get(name, 0) + min(used, ahead.reused)
                ahead.reused -= min(used, ahead.reused)
                fresh = len(ahead.members) - ahead.reused
                if fresh:
                    unused = ("u", *ahead.members[:fresh])
                    _quiet(self._request(scripts.limit_ahead, ahead.keys, unused, (), False))
                if ahead.reused:
                    spares = tuple(ahead.members[fresh:])
                    _quiet(self._request(scripts.limit_release, ahead.keys, (0,), spares, False))
                    for keys, args in self._counts():  # as when spares are released
                        _quiet(self._request(scripts.limit_ahead, keys, args, (), False))
            ahead.starts, ahead.members, ahead.reused, ahead.total = 0, [], 0, 0

    def _request(
        self,
        script: Script,
        keys: tuple[str, ...],
        head: tuple[Arg, ...],
        items: tuple[Arg, ...],
        one_each: bool,
    ) -> asyncio.Future[Any]:
        call = self._queued.get((script, keys, head))
        if call is None:
            call = self._queued[(script, keys, head)] = _Call(script, keys, head, one_each)
            if self._sender is None or self._sender.done():
                self._sender = asyncio.create_task(self._send())
        call.items += items
        if one_each or not call.replies:
            call.replies.append(asyncio.get_running_loop().create_future())
        return call.replies[-1]

    def _requeue(self, calls: Sequence[_Call]) -> None:
        """Calls a fetch carried whose answer was lost: sent again on their own (every
        limiter call a fetch carries may run twice: releases and give-backs do)."""
        for call in calls:
            queued = self._queued.get((call.script, call.keys, call.head))
            if queued is None:
                call.sent = False
                self._queued[(call.script, call.keys, call.head)] = call
            else:
                queued.items += call.items
                queued.replies += call.replies
        if self._queued and (self._sender is None or self._sender.done()):
            self._sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the tasks of this loop iteration add their requests
        while self._queued:
            batch = list(self._queued.values())
            self._queued = {}
            for call in batch:
                call.sent = True
            script_calls: list[ScriptCall] = [
                (call.script, call.keys, [*call.head, *call.items]) for call in batch
            ]
            try:
                replies = await self._broker.scripts.run_many(self._broker.redis, script_calls)
            except Exception as exc:
                for call in batch:
                    call.fail(exc)
                continue
            for call, reply in zip(batch, replies, strict=True):
                call.settle(reply)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _chain(done: asyncio.Future[Any], to: asyncio.Future[Any]) -> None:
    if to.done():
        return
    if done.cancelled():
        to.cancel()
    elif done.exception() is not None:
        to.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        to.set_result(None)


def _quiet(reply: asyncio.Future[Any]) -> None:
    """A give-back that fails leaves the start spent or the slot to expire: safe."""
    reply.add_done_callback(lambda done: done.cancelled() or done.exception())


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
