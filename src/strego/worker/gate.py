"""The limit gate: global limits between a delivery and its handler (docs/limits.md).

Before a handler starts, the gate asks each limiter the task counts against (its
type's ``limits=``; its queue's ``queue_limits`` for a reclaimed delivery, which the
fetch script did not check). Over a limit the task waits here when the wait is short,
else it is parked: back to the queue's scheduled set at the time the limiter named,
not a retry and not a failure. Concurrency slots are released whatever the outcome
and renewed with the task's lease while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from strego.broker.base import Delivery, WorkerBroker
from strego.broker.limiting import Slot, Verdict
from strego.envelope import TaskMessage
from strego.limits import ConcurrencyLimit, Limit, RateLimit, limit_key
from strego.outcome import Dead, DeadReason, Parked
from strego.task import Task
from strego.worker.leases import Lease
from strego.worker.maintenance import every

__all__ = ["LimitGate"]

log = logging.getLogger("strego")

LOCAL_WAIT_MAX_S = 0.5  # shorter waits are sat out holding the task; longer ones park
_TINY_WAIT_S = 0.05  # reserved waits this short are sat out even when many wait
_JITTER_S = 0.02  # added to a park: tasks told the same time do not return in lockstep


def slot_member(delivery: Delivery) -> str:
    """A concurrency slot belongs to one delivery: asking again is a no-op, and a
    reclaimed delivery (a new count) never inherits a crashed worker's slot."""
    return f"{delivery.queue}|{delivery.entry_id}|{delivery.deliveries}"


class LimitGate:
    def __init__(
        self,
        broker: WorkerBroker,
        type_limits: Mapping[str, tuple[Limit, ...]],
        queue_limits: Mapping[str, tuple[Limit, ...]],
        clock: Callable[[], float],
        wake: Callable[[], None],
        broker_concurrency: int = 10,
    ) -> None:
        self._broker = broker
        self._type_limits = dict(type_limits)
        # Task types whose limits all take no key: checked without decoding a Task.
        self._unkeyed = {
            task_type
            for task_type, limits in self._type_limits.items()
            if all(limit.key is None for limit in limits)
        }
        self._queue_limits = dict(queue_limits)
        self._clock = clock
        self._wake = wake  # a queue's hold ended early: let the fetch loop look again
        self._slots: dict[Lease, list[Slot]] = {}
        # Limits a delivery took a slot of the worker's pool for (put back at its end).
        self._pooled: dict[Lease, tuple[Limit, ...]] = {}
        self._slot_types = {
            task_type
            for task_type, limits in self._type_limits.items()
            if any(isinstance(limit, ConcurrencyLimit) for limit in limits)
        }
        self._fetched: set[Lease] = set()  # its queue limits were applied by the fetch
        self._holds: dict[str, float] = {}  # queue → clock time its queue limit allows more
        self._releases: set[asyncio.Future[Any]] = set()
        # Tasks sitting out a short wait hold worker slots: at most half of them may,
        # so one limited backlog cannot keep other tasks from being fetched.
        self._waiting = 0
        self._max_waiting = max(1, broker_concurrency // 2)
        self.local_wait_max_s = min(LOCAL_WAIT_MAX_S, broker.timing.claim_stale_after_s / 10)

    @property
    def enabled(self) -> bool:
        return bool(self._type_limits or self._queue_limits)

    async def declare(self) -> None:
        declared: list[tuple[Limit, str | None]] = [
            (limit, queue) for queue, limits in self._queue_limits.items() for limit in limits
        ]
        declared += [(limit, None) for limits in self._type_limits.values() for limit in limits]
        if declared:
            await self._broker.limits.declare(declared)

    def loops(self) -> list[asyncio.Task[None]]:
        if not self.enabled:
            return []
        interval = max(0.05, self._broker.timing.claim_stale_after_s / 3)
        return [asyncio.create_task(every("limit slot renewal", interval, self._renew))]

    # -- queue-wide holds (the fetch script said "nothing now") -------------------------

    def hold(self, queue: str, wait_s: float) -> None:
        """Remember a queue limit's wait: the queue is not fetched again before it."""
        self._holds[queue] = self._clock() + wait_s

    def held(self) -> set[str]:
        now = self._clock()
        for queue in [q for q, until in self._holds.items() if until <= now]:
            del self._holds[queue]
        return set(self._holds)

    def unheld_at(self) -> float:
        """When the next hold ends (inf: none)."""
        return min(self._holds.values(), default=float("inf"))

    # -- one delivery ---------------------------------------------------------------

    def adopt(self, lease: Lease) -> None:
        """A fetched delivery: the fetch script spent its queue's limits (and took its
        queue-wide concurrency slots) atomically."""
        limits = self._queue_limits.get(lease.delivery.queue)
        if not limits:
            return
        self._fetched.add(lease)
        member = slot_member(lease.delivery)
        slots = [
            Slot(limit, lease.delivery.queue, "", member)
            for limit in limits
            if isinstance(limit, ConcurrencyLimit)
        ]
        if slots:
            self._slots[lease] = slots

    async def admit(
        self, lease: Lease, message: TaskMessage, payload: object
    ) -> Parked | Dead | None:
        """None when the task may start (its slots held), else how to park it (or, when
        a limit's key function fails on it, its dead letter)."""
        delivery = lease.delivery
        type_limits = self._type_limits.get(message.type, ())
        own = () if lease in self._fetched else self._queue_limits.get(delivery.queue, ())
        taken = 0
        if type_limits and message.type in self._unkeyed and not own:
            # The usual case, without a round trip: the fetch that brought the task
            # took its starts ahead, the worker's pool has its slots.
            taken = self._take_ahead(type_limits)
            if taken and message.type in self._slot_types:
                self._pooled[lease] = type_limits[:taken]  # (all: the same tuple)
            if taken == len(type_limits):
                return None
        checks: list[tuple[Limit, str | None, str]] = []
        if own:  # reclaimed: the fetch script did not check these
            checks += [(lim, delivery.queue, "") for lim in own]
        if type_limits:
            if message.type in self._unkeyed:
                checks += [(lim, None, "") for lim in type_limits[taken:]]
            else:
                task = Task.received(message, payload, None)  # what key functions are given
                try:
                    checks += [(lim, None, limit_key(lim, task)) for lim in type_limits]
                except Exception as exc:  # the user's key function: retrying cannot fix it
                    return _bad_key(message, exc)
        if not checks:
            return None
        member = slot_member(delivery)
        tokens: list[None] = []  # one per place taken among the tasks waiting here
        try:
            answer = await self._ask_all(lease, checks, message.id, member, tokens, not taken)
            if isinstance(answer, float):
                if answer > 0:  # a start reserved for us: wait for it here, then start
                    await asyncio.sleep(answer)
                return None
        finally:
            self._waiting -= len(tokens)
        limit, wait_s = answer
        await self.release(lease, ran=False)  # hold no slot while parked
        delay = wait_s + random.uniform(0, _JITTER_S)
        log.debug(
            "task %s parked for %.3fs by limit %s",
            message.id,
            delay,
            limit.name,
            extra={"task_id": message.id, "queue": delivery.queue},
        )
        return Parked(message.id, delivery.blob or b"", delay, limit.name)

    async def _ask_all(
        self,
        lease: Lease,
        checks: list[tuple[Limit, str | None, str]],
        task_id: str,
        member: str,
        tokens: list[None],
        try_ahead: bool,
    ) -> float | tuple[Limit, float]:
        """Seconds until the task may start (reservations), or the limit that refused
        it and when to come back."""
        held = self._slots.setdefault(lease, [])
        start_in = 0.0
        for limit, scope, key in checks:
            if any(s.limit == limit and s.scope == scope and s.key == key for s in held):
                continue
            # Taken ahead by the fetch that brought this task, or a pool slot:
            if (
                try_ahead
                and scope is None
                and limit.key is None
                and self._broker.limits.take_ahead(limit)
            ):
                if isinstance(limit, ConcurrencyLimit):
                    self._pooled[lease] = (*self._pooled.get(lease, ()), limit)
                continue
            # A rate limiter may reserve a start a little ahead, for a task that can
            # wait here: at most half the worker's slots wait, so one limited backlog
            # never keeps other tasks from being fetched.
            # (A wait of a few milliseconds is always sat out: parking would cost more.)
            max_wait_s = 0.0
            if isinstance(limit, RateLimit):
                max_wait_s = _TINY_WAIT_S
                if self._waiting < self._max_waiting:
                    self._waiting += 1  # taken before asking: concurrent asks see it
                    tokens.append(None)
                    max_wait_s = self.local_wait_max_s
            verdict = await self._ask(lease, limit, scope, key, task_id, member, max_wait_s)
            if verdict.reserved:
                start_in = max(start_in, verdict.wait_s)
            elif not verdict.now:
                return limit, verdict.wait_s
            elif isinstance(limit, ConcurrencyLimit):
                held.append(Slot(limit, scope, key, member))
        return start_in

    def _take_ahead(self, limits: tuple[Limit, ...]) -> int:
        """How many of ``limits`` (unkeyed, in order) had a start taken ahead or a
        pool slot for this task."""
        taken = 0
        take = self._broker.limits.take_ahead
        for limit in limits:
            if not take(limit):
                break
            taken += 1
        return taken

    async def _ask(
        self,
        lease: Lease,
        limit: Limit,
        scope: str | None,
        key: str,
        task_id: str,
        member: str,
        max_wait_s: float,
    ) -> Verdict:
        """The limiter's answer; Redis errors are retried (asking is idempotent) until
        it answers or the delivery is no longer ours. A limiter's keys deleted or
        garbled meanwhile only reset its state."""
        delay = 0.05
        while True:
            try:
                return await self._broker.limits.ask(
                    limit, scope, key, lease.delivery.queue, task_id, member, max_wait_s=max_wait_s
                )
            except Exception as exc:
                if lease.superseded:
                    raise
                log.warning("limit %s could not be checked (%s); retrying", limit.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _forget(self, lease: Lease) -> list[Slot] | None:
        """The delivery is done with its limits: its pool slots go back to the pool;
        the slots it holds in its own name are returned for releasing."""
        self._fetched.discard(lease)
        pooled = self._pooled.pop(lease, None)
        if pooled is not None:
            self._broker.limits.put_back(pooled)
        return self._slots.pop(lease, None)

    async def release(self, lease: Lease, *, ran: bool = True) -> None:
        """Free the delivery's slots: its handler ended (any outcome) or it must wait.
        A failure is logged; the slots then free when their lease expires."""
        slots = self._forget(lease)
        if not slots:
            return
        try:
            await self._broker.limits.release_soon(slots, ran=ran)
        except Exception as exc:
            log.warning("could not release limit slots (%s); they expire on their own", exc)
        self._released(slots)

    def release_soon(self, lease: Lease) -> None:
        """:meth:`release` without waiting for it (the handler's slot frees now). The
        release is queued at once, so the next fetch (usually built in this very loop
        turn, for the worker slot this task frees) carries it."""
        slots = self._forget(lease)
        if not slots:
            return
        sent = self._broker.limits.release_soon(slots, ran=lease.ran)
        if slots[0].scope is not None or (
            len(slots) > 1 and any(slot.scope is not None for slot in slots)
        ):  # a queue's hold may end
            sent.add_done_callback(lambda _: self._released(slots))
        if sent not in self._releases:  # releases sent together share one future
            self._releases.add(sent)
            sent.add_done_callback(self._release_done)

    def _release_done(self, sent: asyncio.Future[Any]) -> None:
        self._releases.discard(sent)
        exc = None if sent.cancelled() else sent.exception()
        if exc is not None:
            log.warning("could not release limit slots (%s); they expire on their own", exc)

    def _released(self, slots: list[Slot]) -> None:
        if any(slot.scope is not None for slot in slots):
            for slot in slots:
                self._holds.pop(slot.scope or "", None)
            self._wake()

    async def drain(self) -> None:
        """Wait for releases in flight, and release the worker's pool (at shutdown)."""
        if self._releases:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._releases), timeout=5)
        if self.enabled:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._broker.limits.release_held(), 5)

    async def _renew(self) -> None:
        slots = [slot for slots in self._slots.values() for slot in slots]
        await self._broker.limits.renew(slots)  # (with none: what the limiter keeps)


def _bad_key(message: TaskMessage, exc: Exception) -> Dead:
    error = f"a limit's key function failed: {type(exc).__name__}: {exc}"
    dead = message.evolve(
        last_error=error, dead_reason=DeadReason.LIMIT_KEY.value, failed_ms=int(time.time() * 1000)
    )
    return Dead(dead, DeadReason.LIMIT_KEY)
