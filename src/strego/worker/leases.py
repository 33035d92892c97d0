"""The deliveries a worker holds, one :class:`Lease` each, from fetch to applied outcome.

One table is shared explicitly by the Engine (dispatch, renewal, cancel requests,
shutdown), the Runner (is a cancel requested? was this delivery superseded?) and the
OutcomeSink (drop the lease once its outcome landed), so every part sees one truth.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable

from strego.broker.base import Delivery

__all__ = ["Lease", "LeaseTable", "Phase"]

_EARLY_CANCELS = 1024  # cancel requests for task ids not decoded yet, remembered briefly


class Phase(enum.Enum):
    WAITING = "waiting"  # handed to this worker, handler not started
    RUNNING = "running"  # handler started
    SETTLING = "settling"  # outcome handed to the sink, not applied yet


@dataclasses.dataclass(slots=True, eq=False)
class Lease:
    delivery: Delivery
    confirmed_at: float  # clock time Redis last confirmed this delivery is ours
    task_id: str = ""  # known once the entry is decoded
    phase: Phase = Phase.WAITING
    cancel_requested: bool = False
    superseded: bool = False  # another delivery replaced it, or its entry was deleted
    ran: bool = False  # its handler started (its duration counts in the worker's stats)
    handle: asyncio.Task[None] | None = None  # the task processing it

    @property
    def key(self) -> tuple[str, int, str]:
        return _key(self.delivery)


def _key(delivery: Delivery) -> tuple[str, int, str]:
    return (delivery.queue, delivery.band, delivery.entry_id)


class LeaseTable:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._leases: dict[tuple[str, int, str], Lease] = {}
        self._by_task: dict[str, Lease] = {}
        self._early_cancels: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._leases)

    def add(self, delivery: Delivery, confirmed_at: float) -> Lease:
        lease = Lease(delivery, confirmed_at)
        self._leases[lease.key] = lease
        return lease

    def identify(self, lease: Lease, task_id: str) -> None:
        """The entry was decoded: from now on a cancel request can find it by id."""
        lease.task_id = task_id
        self._by_task[task_id] = lease
        if self._early_cancels.pop(task_id, False) is None:
            lease.cancel_requested = True

    def begin(self, lease: Lease) -> None:
        lease.phase = Phase.RUNNING
        lease.ran = True

    def settle(self, lease: Lease) -> None:
        lease.phase = Phase.SETTLING

    def drop(self, lease: Lease) -> None:
        """Its outcome landed (or it was given up): stop renewing it."""
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]
        if lease.task_id and self._by_task.get(lease.task_id) is lease:
            del self._by_task[lease.task_id]

    def get(self, delivery: Delivery) -> Lease | None:
        return self._leases.get(_key(delivery))

    def request_cancel(self, task_id: str) -> None:
        """Cancel a task this worker holds: not started, it will not start; running,
        its handler is interrupted. An id not decoded yet is remembered briefly."""
        lease = self._by_task.get(task_id)
        if lease is None:
            self._early_cancels[task_id] = None
            while len(self._early_cancels) > _EARLY_CANCELS:
                self._early_cancels.popitem(last=False)
            return
        if lease.phase is Phase.SETTLING:
            return
        lease.cancel_requested = True
        if lease.phase is Phase.RUNNING and lease.handle is not None:
            lease.handle.cancel()

    def supersede(self, deliveries: Iterable[Delivery]) -> list[Lease]:
        """Redis says these deliveries are no longer ours: stop their handlers (their
        outcome would be dropped anyway, and another worker may be running them)."""
        found: list[Lease] = []
        for delivery in deliveries:
            lease = self._leases.get(_key(delivery))
            if lease is None:
                continue
            lease.superseded = True
            found.append(lease)
            if lease.phase is not Phase.SETTLING and lease.handle is not None:
                lease.handle.cancel()
        return found

    def confirm(self, at: float) -> None:
        """A renewal that covered every lease succeeded (those lost were superseded)."""
        for lease in self._leases.values():
            lease.confirmed_at = max(lease.confirmed_at, at)

    def entry_ids(self, queue: str) -> list[str]:
        """The entries this worker holds on ``queue`` (reclaim must not take them)."""
        return [
            lease.delivery.entry_id
            for lease in self._leases.values()
            if lease.delivery.queue == queue
        ]

    def running(self) -> dict[str, int]:
        """Handlers running now, per queue (read by /metrics, not per task)."""
        found: dict[str, int] = {}
        for lease in self._leases.values():
            if lease.phase is Phase.RUNNING:
                found[lease.delivery.queue] = found.get(lease.delivery.queue, 0) + 1
        return found

    def renewable(self) -> list[tuple[Delivery, str]]:
        return [(lease.delivery, lease.task_id) for lease in self._leases.values()]

    def unconfirmed_for(self, lease: Lease) -> float:
        """Seconds since Redis last confirmed the lease (a stall makes this large)."""
        return self._clock() - lease.confirmed_at
