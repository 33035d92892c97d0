"""An in-memory :class:`~strego.broker.base.WorkerBroker` for fast unit tests of the
worker core (Engine, QueueSelector, OutcomeSink), never instead of the real-Redis ones.

It keeps the protocol's promises the worker relies on, in Python: deliveries carry a
delivery count and every renewal and outcome is fenced by (consumer, count); reclaim
never takes what the caller holds and bumps the count; ``fetch`` answers None for a
paused queue and serves higher priority first; ``apply`` returns the ids of
superseded outcomes. Faults are injected explicitly (``fail_next_applies``,
``gate_fetch``), and every call is recorded so tests wait on conditions, not time.

Several workers share one :class:`MemoryQueues`; each gets its own broker view
(``queues.broker("w1")``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from strego.broker.base import (
    Delivery,
    LeaseCheck,
    QueueSignal,
    Reclaimed,
    Retention,
    SignalKind,
    WorkerRegistration,
    WorkerTiming,
)
from strego.broker.limiting import Slot, Verdict
from strego.envelope import encode
from strego.limits import Limit
from strego.outcome import Cancelled, Dead, Outcome, Released, Retry, Succeeded
from strego.task import Task

__all__ = ["MemoryBroker", "MemoryQueues"]


@dataclasses.dataclass(slots=True)
class _Entry:
    queue: str
    band: int
    entry_id: str
    task_id: str
    blob: bytes
    consumer: str | None = None  # None: waiting, not delivered
    deliveries: int = 0
    delivered_at: float = 0.0
    cancel: bool = False


class MemoryQueues:
    """The shared state: entries per queue, who holds what, and how tasks ended."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._ids = itertools.count(1)
        self.entries: dict[str, _Entry] = {}  # entry id -> entry (waiting or delivered)
        self.finished: dict[str, str] = {}  # task id -> completed / cancelled / dead
        self.retries: dict[str, float] = {}  # task id -> delay asked
        self.paused: set[str] = set()
        self.listeners: list[tuple[Sequence[str], Callable[[QueueSignal], None]]] = []
        self.changed = asyncio.Condition()

    def broker(self, consumer: str, **timing: float) -> MemoryBroker:
        return MemoryBroker(self, consumer, WorkerTiming(**_timing(timing)))

    def add(self, task: Task) -> str:
        """Enqueue ``task`` (no wake-up: call :meth:`signal` to announce it)."""
        message = task.to_message()
        entry_id = f"{next(self._ids)}-0"
        self.entries[entry_id] = _Entry(
            message.queue, message.priority, entry_id, message.id, encode(message)
        )
        return entry_id

    def signal(self, queue: str, kind: SignalKind, value: str = "") -> None:
        """What a PUBLISH on the queue's channel does: every listener hears it."""
        for queues, on_signal in self.listeners:
            if queue in queues:
                on_signal(QueueSignal(queue, kind, value))

    def waiting(self, queue: str) -> list[_Entry]:
        return [e for e in self.entries.values() if e.queue == queue and e.consumer is None]

    def held_by(self, consumer: str) -> list[_Entry]:
        return [e for e in self.entries.values() if e.consumer == consumer]

    def cancel(self, task_id: str) -> bool:
        """Client.cancel: a waiting task ends now; a delivered one is marked and its
        holder told (the worker must not start it, or stops it)."""
        for entry in list(self.entries.values()):
            if entry.task_id != task_id:
                continue
            if entry.consumer is None:
                del self.entries[entry.entry_id]
                self.finished[task_id] = "cancelled"
            else:
                entry.cancel = True
                self.signal(entry.queue, SignalKind.CANCEL, task_id)
            return True
        return False

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds after some broker call (no polling)."""
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


def _timing(given: Mapping[str, float]) -> dict[str, float]:
    return {
        "block_s": given.get("block_s", 5.0),
        "claim_stale_after_s": given.get("claim_stale_after_s", 300.0),
        "claim_check_interval_s": given.get("claim_check_interval_s", 30.0),
    }


class NoLimits:
    """The double's limits seam: every start allowed at once. Global limits are tested
    against real Redis (tests/integration/test_limits.py, tests/cluster)."""

    async def declare(self, limits: Sequence[tuple[Limit, str | None]]) -> None:
        return None

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
        return Verdict(0.0)

    def take_ahead(self, limit: Limit) -> bool:
        return False

    def put_back(self, limits: Sequence[Limit]) -> None:
        return None

    async def release_held(self) -> None:
        return None

    def release_soon(self, slots: Sequence[Slot], *, ran: bool = True) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.release(slots, ran=ran))

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        return None

    async def renew(self, slots: Sequence[Slot]) -> None:
        return None


class MemoryBroker:
    """One worker's view of :class:`MemoryQueues`; satisfies ``WorkerBroker``."""

    def __init__(self, queues: MemoryQueues, consumer: str, timing: WorkerTiming) -> None:
        self.queues = queues
        self._consumer = consumer
        self._timing = timing
        self.calls: list[str] = []  # the name of every call, in order
        self.fetches: list[Sequence[tuple[str, int]]] = []
        self.fail_next_applies = 0  # the next N apply() calls raise (a transient error)
        self.gate_fetch: asyncio.Event | None = None  # fetch replies wait for it (in flight)

    @property
    def consumer(self) -> str:
        return self._consumer

    @property
    def timing(self) -> WorkerTiming:
        return self._timing

    @property
    def limits(self) -> NoLimits:
        return NoLimits()

    async def _called(self, name: str) -> None:
        self.calls.append(name)
        await self.queues._notify()

    async def aclose(self) -> None:
        await self._called("aclose")

    async def prepare(self, queues: Sequence[str], retention: Retention | None = None) -> None:
        await self._called("prepare")

    async def register(self, registration: WorkerRegistration) -> None:
        await self._called("register")

    async def take_over(self, queue: str) -> int:
        await self._called("take_over")
        return 0

    handoff = None  # no one-hop idle pickup: workers wait for wake-ups

    async def fetch(
        self, wants: Sequence[tuple[str, int]], *, offer: bool = False, unblock: bool = False
    ) -> dict[str, list[Delivery] | None]:
        self.fetches.append(list(wants))
        found: dict[str, list[Delivery] | None] = {}
        for queue, count in wants:
            if queue in self.queues.paused:
                found[queue] = None
                continue
            waiting = sorted(self.queues.waiting(queue), key=lambda e: -e.band)[:count]
            found[queue] = [self._deliver(entry) for entry in waiting]
        await self._called("fetch")
        if self.gate_fetch is not None:  # Redis answered; the reply is still on its way
            await self.gate_fetch.wait()
        return found

    def _deliver(self, entry: _Entry) -> Delivery:
        entry.consumer = self._consumer
        entry.deliveries += 1
        entry.delivered_at = self.queues.clock()
        return Delivery(
            entry.queue, entry.band, entry.entry_id, {b"d": entry.blob}, entry.deliveries
        )

    def _owned(self, delivery: Delivery) -> _Entry | None:
        entry = self.queues.entries.get(delivery.entry_id)
        if entry is None or entry.consumer != self._consumer:
            return None
        return entry if entry.deliveries == delivery.deliveries else None

    async def apply(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> list[str]:
        if self.fail_next_applies > 0:
            self.fail_next_applies -= 1
            await self._called("apply failed")
            raise ConnectionError("injected: Redis unreachable")
        lost = []
        for delivery, outcome in outcomes:
            entry = self._owned(delivery)
            if entry is None:
                lost.append(_task_id(outcome))
                continue
            del self.queues.entries[entry.entry_id]
            self._finish(entry, outcome)
        await self._called("apply")
        return lost

    def _finish(self, entry: _Entry, outcome: Outcome) -> None:
        if isinstance(outcome, Released):
            entry.consumer = None
            if not outcome.counted:
                entry.deliveries -= 1
            self.queues.entries[entry.entry_id] = entry
        elif isinstance(outcome, Succeeded):
            self.queues.finished[entry.task_id] = "completed"
        elif isinstance(outcome, Cancelled):
            self.queues.finished[entry.task_id] = "cancelled"
        elif isinstance(outcome, Dead):
            self.queues.finished[entry.task_id] = "dead"
        else:
            self.queues.retries[entry.task_id] = outcome.delay_s

    async def promote_due(self, queue: str) -> float | None:
        await self._called("promote_due")
        return None

    async def claim_stale(
        self, queue: str, min_idle_s: float, limit: int, holding: Collection[str] = ()
    ) -> Reclaimed:
        now = self.queues.clock()
        stale = [
            e
            for e in self.queues.entries.values()
            if e.queue == queue
            and e.consumer is not None
            and e.entry_id not in holding
            and now - e.delivered_at >= min_idle_s
        ]
        stale.sort(key=lambda e: -e.band)
        taken, cancelled = [], []
        for entry in stale[:limit]:
            if entry.cancel:
                del self.queues.entries[entry.entry_id]
                self.queues.finished[entry.task_id] = "cancelled"
                cancelled.append(entry.task_id)
            else:
                taken.append(self._deliver(entry))
        await self._called("claim_stale")
        return Reclaimed(deliveries=taken, cancelled=cancelled, more=len(stale) > limit)

    async def renew(self, leases: Sequence[tuple[Delivery, str]]) -> LeaseCheck:
        lost, cancel = [], []
        for delivery, _ in leases:
            entry = self._owned(delivery)
            if entry is None:
                lost.append(delivery)
                continue
            entry.delivered_at = self.queues.clock()
            if entry.cancel:
                cancel.append(delivery)
        await self._called("renew")
        return LeaseCheck(lost=lost, cancel=cancel)

    async def trim_dead(self, queue: str) -> None:
        await self._called("trim_dead")

    async def listen(
        self, queues: Sequence[str], on_signal: Callable[[QueueSignal], None]
    ) -> Callable[[], Awaitable[None]]:
        listener = (list(queues), on_signal)
        self.queues.listeners.append(listener)

        async def stop() -> None:
            self.queues.listeners.remove(listener)

        await self._called("listen")
        return stop

    async def heartbeat(
        self,
        registration: WorkerRegistration,
        in_flight: int,
        stats: Mapping[str, str] | None = None,
    ) -> None:
        await self._called("heartbeat")

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None:
        for entry in self.queues.held_by(self._consumer):
            entry.delivered_at = float("-inf")  # handed over: reclaimable at once
        await self._called("deregister")

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int:
        await self._called("cleanup_consumers")
        return 0


def _task_id(outcome: Outcome) -> str:
    if isinstance(outcome, Retry | Dead):
        return outcome.message.id
    return outcome.task_id
