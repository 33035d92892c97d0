"""Taking starts ahead with the fetch, and a worker's pool of concurrency slots.

For each unkeyed task-type limit the previous fetch's tasks asked, the worker's next
fetch pipeline carries what the same share of its tasks will need (lua/limit_ahead.lua):

- a **rate** limiter's starts, when more than that conform now, all or none. The
  fetch's tasks use them in the loop turns that handle the fetch (a start is never
  kept for later: the window guarantee); two turns later what they left is given back.
- a **concurrency** limiter's slots, into the worker's **pool**: slots held in Redis
  in the worker's name (not a delivery's), taken only while at least twice as many
  are free, all or none. A task starting takes one from the pool and puts it back
  when it ends, without a call; the next fetch tops the pool up to what its tasks
  will need, or releases what is beyond twice that. A slot sits in the pool without
  a task only while the worker is fetching: two loop turns after a task put one back
  (or a fetch's tasks took theirs) with no fetch in flight, every free slot is
  released. Near the limit the take is refused and every task asks for itself as
  before (bookings, fair spacing).

See docs/limits.md, "What checking costs".
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any

from strego.broker.redis.limit_calls import Arg, CallQueue, quiet, text
from strego.broker.redis.scripts import ScriptCall
from strego.limits import ConcurrencyLimit, Limit, RateLimit

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["Ahead", "Pool", "TakeAhead"]

KeyNames = Callable[[Limit, str | None, str], tuple[str, ...]]


@dataclasses.dataclass(slots=True)
class Ahead:
    """Starts one fetch took ahead for one rate limiter, until its tasks have asked."""

    limit: RateLimit
    keys: tuple[str, ...]
    starts: int = 0  # starts left
    fence: str = ""  # the arrival time the take left (the give-back's fence)


@dataclasses.dataclass(slots=True)
class Pool:
    """The slots of one unkeyed concurrency limit this worker holds for its tasks.
    Members are interchangeable (they name the worker), so a task only counts."""

    limit: ConcurrencyLimit
    keys: tuple[str, ...]
    members: list[str] = dataclasses.field(default_factory=list)  # held in Redis
    in_use: int = 0  # of them, by tasks that started and have not ended
    starts: int = 0  # tasks started on them, not yet added to the granted total
    taking: int = 0  # members a fetch in flight asked for
    taking_sent: float = 0.0  # when that fetch was sent (monotonic)
    # When every member was last known held in Redis (the send time of the renewal or
    # take that said so): a pool not confirmed for claim_stale_after / 2 (the worker
    # stalled) lends nothing until its renewal answers, as a stalled delivery is
    # verified before it starts.
    confirmed_at: float = 0.0

    @property
    def free(self) -> int:
        return len(self.members) - self.in_use


Take = tuple[ScriptCall, Ahead | tuple[Pool, list[str]]]


class TakeAhead:
    def __init__(self, broker: RedisBroker, calls: CallQueue, key_names: KeyNames) -> None:
        self._broker = broker
        self._calls = calls
        self._key_names = key_names
        self._tag = f"a|{broker.config.consumer}|{os.urandom(3).hex()}|"
        self._seq = 0
        self._wanted: dict[str, int] = {}  # by limit name: tasks asked since the fetch
        self._limits: dict[str, Limit] = {}
        self._fetched = 0  # how many tasks the last fetch asked for
        self._ahead: dict[str, Ahead] = {}  # rate starts the last fetch took, until given back
        self._pools: dict[str, Pool] = {}
        self._fetching = 0  # fetches in flight
        self._fresh_s = broker.config.claim_stale_after_s / 2
        self._lease_ms = int(broker.config.claim_stale_after_s * 1000)
        self._check_due = False  # an idle check is scheduled

    def take(self, limit: Limit) -> bool:
        """Whether a start or a pool slot was there for a task of ``limit`` (an unkeyed
        task-type limit; a slot is then put back with :meth:`put_back`); False: ask.
        Counts the demand the next fetch takes for."""
        name = limit.name  # a limiter is its name (hashing the dataclass costs more)
        wanted = self._wanted
        wanted[name] = wanted.get(name, 0) + 1
        pool = self._pools.get(name)
        if pool is not None:
            if len(pool.members) > pool.in_use and monotonic() - pool.confirmed_at < self._fresh_s:
                pool.in_use += 1
                pool.starts += 1
                return True
            return False
        if name not in self._limits:
            self._register(limit)
            return False
        ahead = self._ahead.get(name)
        if ahead is not None and ahead.starts > 0:
            ahead.starts -= 1
            return True
        return False

    def _register(self, limit: Limit) -> None:
        self._limits[limit.name] = limit
        if isinstance(limit, ConcurrencyLimit):
            self._pools[limit.name] = Pool(limit, self._key_names(limit, None, ""))

    def put_back(self, limits: Sequence[Limit]) -> None:
        """A task that took pool slots (and maybe starts) for ``limits`` ended."""
        pools = self._pools
        for limit in limits:
            pool = pools.get(limit.name)
            if pool is not None:
                pool.in_use -= 1
        self._check_soon()

    def requests(self, count: int) -> list[Take]:
        """What a fetch of ``count`` tasks carries: for each limit the previous fetch's
        tasks asked, what the same share of this fetch's tasks will need."""
        self._fetching += 1
        wanted, fetched = self._wanted, self._fetched
        self._wanted, self._fetched = {}, count
        calls: list[Take] = []
        script = self._broker.scripts.limit_ahead
        sent = monotonic()
        for pool in self._pools.values():
            if pool.taking:  # (another fetch in flight: it tops the pool up)
                continue
            asked = wanted.get(pool.limit.name, 0)
            n = min(count, math.ceil(count * asked / fetched)) if fetched else 0
            free = pool.free
            if free > 2 * n:  # more than the next tasks need: give the surplus back
                self._release(pool, free - n)
            elif free < n:
                self._seq += 1
                members = [f"{self._tag}{self._seq}.{i}" for i in range(n - free)]
                pool.taking, pool.taking_sent = len(members), sent
                args: list[Arg] = ["c", pool.limit.limit, self._lease_ms, *members]
                calls.append(((script, pool.keys, args), (pool, members)))
        if not wanted or fetched <= 0:
            return calls
        for name, asked in wanted.items():
            limit = self._limits[name]
            if not isinstance(limit, RateLimit):
                continue
            n = min(count, math.ceil(count * asked / fetched))
            interval = limit.interval_ms
            rate_args: list[Arg] = [
                "r",
                f"{interval:.6f}",
                f"{interval * (limit.burst - 1):.6f}",
                n,
            ]
            ahead = Ahead(limit, self._key_names(limit, None, ""))
            calls.append(((script, ahead.keys, rate_args), ahead))
        return calls

    def settle(self, answered: Sequence[tuple[Take, Any]]) -> None:
        """The fetch's answers: rate starts are usable until the fetch's tasks have
        asked (they start on the next loop turns), then given back; slots join the pool."""
        self._fetching -= 1
        taken: dict[str, Ahead] = {}
        for (_, taker), reply in answered:
            if isinstance(taker, Ahead):
                if not isinstance(reply, Exception) and int(reply[0]):
                    taker.starts, taker.fence = int(reply[0]), text(reply[1])
                    taken[taker.limit.name] = taker
                continue
            pool, members = taker
            pool.taking = 0
            if not isinstance(reply, Exception) and int(reply):
                if not pool.members:
                    pool.confirmed_at = pool.taking_sent
                pool.members += members
        self._ahead = taken
        if taken:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._give_back, taken)
        self._check_soon()

    def fail(self, answered: Sequence[Take]) -> None:
        """The fetch failed: slots it may have taken are released (by name: a no-op
        for those it did not take)."""
        self._fetching -= 1
        release = self._broker.scripts.limit_release
        for _, taker in answered:
            if not isinstance(taker, Ahead):
                pool, members = taker
                pool.taking = 0
                quiet(self._calls.request(release, pool.keys, (0,), tuple(members), False))
        self._check_soon()

    def give_back_now(self) -> None:
        """Before the next fetch takes: give back the rate starts the last one left
        (its tasks have asked by now: they ran before the fetch loop came round), so the
        give-back rides ahead of the new take, before it changes the limiter's state (a
        rate give-back is fenced on that state)."""
        if self._ahead:
            self._give_back(self._ahead)

    def _give_back(self, taken: dict[str, Ahead]) -> None:
        """Return the rate starts a fetch took ahead that its tasks did not use."""
        if self._ahead is taken:
            self._ahead = {}
        for ahead in taken.values():
            if ahead.starts:
                interval = f"{ahead.limit.interval_ms:.6f}"
                head: tuple[Arg, ...] = ("g", interval, ahead.starts, ahead.fence)
                quiet(
                    self._calls.request(
                        self._broker.scripts.limit_ahead, ahead.keys, head, (), False
                    )
                )
                ahead.starts = 0

    # -- the pool ------------------------------------------------------------------------

    def _check_soon(self) -> None:
        """Two loop turns from now (a fetch is built by then when the worker is busy),
        release the pools' free slots unless a fetch is in flight."""
        if not self._check_due and self._pools:
            self._check_due = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._check)

    def _check(self) -> None:
        self._check_due = False
        if not self._fetching:  # (else its settle looks again)
            self.release_all()

    def _release(self, pool: Pool, n: int) -> asyncio.Future[Any]:
        """Release ``n`` free slots of ``pool`` (and count the starts made on it)."""
        members = tuple(pool.members[-n:])
        del pool.members[-n:]
        reply = self._calls.request(
            self._broker.scripts.limit_release, pool.keys, (0,), members, False
        )
        quiet(reply)
        self._send_counts(pool)
        return reply

    def _send_counts(self, pool: Pool) -> None:
        args = _count_args(pool)
        if args is not None:
            quiet(self._calls.request(self._broker.scripts.limit_ahead, pool.keys, args, (), False))

    def release_all(self) -> list[asyncio.Future[Any]]:
        """Release every pool slot no task uses (at shutdown)."""
        return [self._release(pool, pool.free) for pool in self._pools.values() if pool.free > 0]

    def held(self) -> list[tuple[tuple[str, ...], list[str]]]:
        """The pools' members by limiter keys (renewed with the running tasks' slots)."""
        return [(pool.keys, list(pool.members)) for pool in self._pools.values() if pool.members]

    def renewed(self, keys: tuple[str, ...], lost: list[str], sent: float) -> None:
        """A renewal sent at ``sent`` answered for ``keys``: the members it found gone
        (the limiter's keys deleted, or the worker stalled past their lease) are
        dropped; every member left is held as of ``sent`` (those taken since, later)."""
        gone = set(lost)
        for pool in self._pools.values():
            if pool.keys == keys:
                if gone:
                    pool.members = [m for m in pool.members if m not in gone]
                pool.confirmed_at = max(pool.confirmed_at, sent)

    def counts(self) -> list[tuple[tuple[str, ...], tuple[Arg, ...]]]:
        """Add the starts made on pool slots to their limiters' ``granted`` totals
        (with the renewals: Inspector's totals lag by that much)."""
        found = [(pool.keys, _count_args(pool)) for pool in self._pools.values()]
        return [(keys, args) for keys, args in found if args is not None]


def _count_args(pool: Pool) -> tuple[Arg, ...] | None:
    """The 'n' call's arguments for the starts made on ``pool`` since the last count
    (taken: counted once), or None when there were none."""
    if not pool.starts:
        return None
    args: tuple[Arg, ...] = ("n", pool.starts)
    pool.starts = 0
    return args
