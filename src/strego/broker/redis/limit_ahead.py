"""Taking starts and slots ahead with the fetch, and passing slots from task to task.

For each unkeyed task-type limit the previous fetch's tasks asked, the worker's next
fetch pipeline carries a request (lua/limit_ahead.lua) for the same share of its tasks:
starts of a rate limiter when more than that conform now, slots of a concurrency
limiter when at least twice as many are free, all or none (near the limit every task
asks for itself). The tasks of that fetch use them without a round trip of their own,
in the loop turns that handle the fetch (no start is kept for later); two turns later
what they left is given back. A slot taken ahead whose task ended stays held in Redis
and goes to the next fetch's tasks if one is built within two loop turns, else it is
released. See docs/limits.md, "What checking costs".
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strego.broker.limiting import Slot
from strego.broker.redis.limit_calls import Arg, CallQueue, chain, quiet, text
from strego.broker.redis.scripts import ScriptCall
from strego.limits import Limit, RateLimit

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

__all__ = ["Ahead", "TakeAhead"]

KeyNames = Callable[[Limit, str | None, str], tuple[str, ...]]


@dataclasses.dataclass(slots=True)
class Ahead:
    """Starts or slots one fetch took ahead for one limit, until its tasks have asked."""

    limit: Limit
    keys: tuple[str, ...]
    starts: int = 0  # a rate limiter's starts left
    fence: str = ""  # the arrival time the take left (the give-back's fence)
    members: list[str] = dataclasses.field(default_factory=list)  # concurrency slots left
    reused: int = 0  # of them, spares passed on (at the end: handed out first)
    total: int = 0  # how many members there were


class TakeAhead:
    def __init__(self, broker: RedisBroker, calls: CallQueue, key_names: KeyNames) -> None:
        self._broker = broker
        self._calls = calls
        self._key_names = key_names
        # Members of slots taken ahead name the worker (never a delivery's).
        self.tag = f"a|{broker.config.consumer}|{os.urandom(3).hex()}|"
        self._seq = 0
        self._wanted: dict[str, int] = {}  # by limit name: tasks asked since the fetch
        self._limits: dict[str, Limit] = {}
        self._fetched = 0  # how many tasks the last fetch asked for
        self._ahead: dict[str, Ahead] = {}  # what the last fetch took, until given back
        # Slots taken ahead whose task ended: still held in Redis (see spare()).
        self._spares: dict[str, list[Slot]] = {}
        self._spared: asyncio.Future[Any] | None = None  # resolved when they are settled
        self._lost: set[str] = set()  # members a renewal found gone
        self._reused: dict[str, int] = {}  # starts on passed-on slots, not yet counted

    def take(self, limit: Limit) -> str | None:
        """A start (``''``) or a slot (its member) the last fetch took ahead for
        ``limit``, or None: then ask. Counts the demand the next fetch takes for."""
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

    def requests(self, count: int) -> tuple[list[tuple[ScriptCall, Ahead]], dict[str, Ahead]]:
        """The takes a fetch of ``count`` tasks carries: for each limit the previous
        fetch's tasks asked, the same share of this fetch's tasks; and the spares it
        will hand out first (taken from the pool now, for that fetch only)."""
        wanted, fetched = self._wanted, self._fetched
        self._wanted, self._fetched = {}, count
        kept: dict[str, Ahead] = {}
        if not wanted or fetched <= 0:
            return [], kept
        script = self._broker.scripts.limit_ahead
        lease_ms = int(self._broker.config.claim_stale_after_s * 1000)
        calls: list[tuple[ScriptCall, Ahead]] = []
        for name, asked in wanted.items():
            limit = self._limits[name]
            n = min(count, math.ceil(count * asked / fetched))
            keys = self._key_names(limit, None, "")
            ahead = Ahead(limit, keys)
            if isinstance(limit, RateLimit):
                interval = limit.interval_ms
                args: list[Arg] = ["r", f"{interval:.6f}", f"{interval * (limit.burst - 1):.6f}", n]
                calls.append(((script, keys, args), ahead))
                continue
            spares = self._spares.get(name)
            if spares:  # slots the last tasks held: passed on without asking Redis
                passed = Ahead(limit, keys, members=[s.member for s in spares[-n:]])
                passed.reused = len(passed.members)
                del spares[-n:]
                kept[name] = passed
                n -= len(passed.members)
            if n > 0:
                self._seq += 1
                ahead.members = [f"{self.tag}{self._seq}.{i}" for i in range(n)]
                args = ["c", limit.limit, lease_ms, *ahead.members]
                calls.append(((script, keys, args), ahead))
        return calls, kept

    def settle(self, answered: list[tuple[Ahead, Any]], kept: dict[str, Ahead]) -> None:
        """The fetch's answers: what was taken (and the spares ``kept`` for it) is
        usable until the fetch's tasks have asked (two loop turns: they start on the
        next), then given back."""
        if not answered and not kept:
            return
        taken = dict(kept)
        for ahead, reply in answered:
            if isinstance(reply, Exception):
                continue  # nothing taken ahead: its tasks ask
            if isinstance(ahead.limit, RateLimit):
                ahead.starts, ahead.fence = int(reply[0]), text(reply[1])
                if ahead.starts:
                    taken[ahead.limit.name] = ahead
            elif int(reply):
                passed = taken.get(ahead.limit.name)
                if passed is not None:
                    ahead.members += passed.members
                    ahead.reused = passed.reused
                taken[ahead.limit.name] = ahead
        self._ahead = taken
        for ahead in taken.values():
            ahead.total = len(ahead.members)
        if taken:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._give_back, taken)

    def fail(self, kept: dict[str, Ahead]) -> None:
        """The fetch failed: the spares it would have handed out are released."""
        release = self._broker.scripts.limit_release
        for ahead in kept.values():
            quiet(self._calls.request(release, ahead.keys, (0,), tuple(ahead.members), False))

    def give_back_now(self) -> None:
        """Before the next fetch takes: give back what the last one left (its tasks
        have asked by now: they ran before the fetch loop came round), so the give-back
        rides ahead of the new take, before it changes the limiter's state (a rate
        give-back is fenced on that state)."""
        if self._ahead:
            self._give_back(self._ahead)

    def _give_back(self, taken: dict[str, Ahead]) -> None:
        """Return what a fetch took ahead and its tasks did not use."""
        if self._ahead is taken:
            self._ahead = {}
        scripts = self._broker.scripts
        for ahead in taken.values():
            if ahead.starts:
                rate = ahead.limit
                interval = f"{rate.interval_ms:.6f}" if isinstance(rate, RateLimit) else "0"
                head: tuple[Arg, ...] = ("g", interval, ahead.starts, ahead.fence)
                quiet(self._calls.request(scripts.limit_ahead, ahead.keys, head, (), False))
            elif ahead.total:
                # Handed out last first: the spares passed on are at the end. Starts
                # on them Redis did not see: counted with the next call.
                used = min(ahead.total - len(ahead.members), ahead.reused)
                if used:
                    name = ahead.limit.name
                    self._reused[name] = self._reused.get(name, 0) + used
                ahead.reused -= used
                fresh = len(ahead.members) - ahead.reused
                if fresh:
                    unused = ("u", *ahead.members[:fresh])
                    quiet(self._calls.request(scripts.limit_ahead, ahead.keys, unused, (), False))
                if ahead.reused:
                    spares = tuple(ahead.members[fresh:])
                    release = scripts.limit_release
                    quiet(self._calls.request(release, ahead.keys, (0,), spares, False))
                    self._send_counts()  # as when spares are released
            ahead.starts, ahead.members, ahead.reused, ahead.total = 0, [], 0, 0

    # -- slots passed on ---------------------------------------------------------------

    def spare(self, slot: Slot) -> asyncio.Future[Any] | None:
        """Keep a slot taken ahead whose task ended for the next fetch's tasks; the
        future settles when it is passed on or released. None: it was lost (a renewal
        found it gone): release it as any other."""
        if slot.member in self._lost:
            self._lost.discard(slot.member)
            return None
        self._spares.setdefault(slot.limit.name, []).append(slot)
        if self._spared is None:
            loop = asyncio.get_running_loop()
            self._spared = loop.create_future()
            loop.call_soon(loop.call_soon, self._release_spares)
        return self._spared

    def spares(self) -> list[Slot]:
        """The spares (renewed with the running tasks' slots)."""
        return [slot for found in self._spares.values() for slot in found]

    def lost(self, members: list[str]) -> None:
        """Members a renewal found gone: those taken ahead are not passed on."""
        self._lost.update(m for m in members if m.startswith(self.tag))

    def counts(self) -> list[tuple[tuple[str, ...], tuple[Arg, ...]]]:
        """Add the starts on passed-on slots to their limiters' ``granted`` totals
        (with the renewals, or when spares are released: Inspector's totals lag by
        that much)."""
        reused, self._reused = self._reused, {}
        return [
            (self._key_names(self._limits[name], None, ""), ("n", n)) for name, n in reused.items()
        ]

    def _send_counts(self) -> None:
        for keys, args in self.counts():
            quiet(self._calls.request(self._broker.scripts.limit_ahead, keys, args, (), False))

    def _release_spares(self) -> None:
        """Release the spares no fetch took (two loop turns after the first one)."""
        spared, spares = self._spared, self._spares
        self._spared, self._spares = None, {}
        assert spared is not None
        members: dict[tuple[str, ...], list[str]] = {}
        for found in spares.values():
            for slot in found:
                members.setdefault(self._key_names(slot.limit, None, ""), []).append(slot.member)
        release = self._broker.scripts.limit_release
        replies = [
            self._calls.request(release, k, (0,), tuple(m), False) for k, m in members.items()
        ]
        if not replies:
            spared.set_result(None)
            return
        self._send_counts()  # going idle: counted now rather than at the next renewal
        sent = replies[0] if len(replies) == 1 else asyncio.gather(*replies)
        sent.add_done_callback(lambda done: chain(done, spared))
