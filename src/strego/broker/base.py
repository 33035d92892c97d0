"""The broker seams: what the client and the worker need, and nothing more.

The worker core depends on :class:`WorkerBroker` only; it never imports Redis.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from strego.broker.limiting import LimitBroker
from strego.envelope import TaskMessage
from strego.outcome import Outcome
from strego.results import Finished
from strego.task import TaskState

__all__ = [
    "Delivery",
    "EnqueueRequest",
    "EnqueueResult",
    "IdleHandoff",
    "LeaseCheck",
    "ProducerBroker",
    "QueueSignal",
    "Reclaimed",
    "Retention",
    "SignalKind",
    "WorkerBroker",
    "WorkerRegistration",
    "WorkerTiming",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to this consumer.

    ``deliveries`` is the entry's delivery count when it was handed over (1 on a first
    read, +1 per reclaim). It is the delivery's fence: renewals and outcomes carry it and
    Redis refuses them once another delivery of the same entry has superseded it, even
    in the same process or under the same consumer name.
    """

    queue: str
    band: int
    entry_id: str
    fields: Mapping[bytes, bytes]  # raw: entries may hold any bytes
    deliveries: int = 1

    @property
    def blob(self) -> bytes | None:
        return self.fields.get(b"d")


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueRequest:
    message: TaskMessage
    delay_s: float | None = None
    process_at: datetime | None = None
    unique_ttl_s: float = 3600.0


@dataclasses.dataclass(frozen=True, slots=True)
class EnqueueResult:
    """``state`` pending/scheduled, or None with ``duplicate_of`` set."""

    task_id: str
    queue: str
    state: TaskState | None
    process_at: datetime | None = None
    duplicate_of: str | None = None
    created: bool = True  # False when an explicit id was already live or processed


class SignalKind(enum.StrEnum):
    """What a message on a queue's event channel announces (its value is the wire form)."""

    WORK = "w"  # tasks are waiting: idle workers fetch
    SOONER = "s"  # something is due sooner than schedulers sleep
    CANCEL = "c"  # a cancel request for the task id in ``value``
    RECLAIM = "r"  # entries were handed over: workers with free slots reclaim now
    UNKNOWN = "?"  # anything else someone published: ignored, never a crash

    @classmethod
    def _missing_(cls, value: object) -> SignalKind:
        return cls.UNKNOWN


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class QueueSignal:
    """A message on a queue's event channel.

    ``kind`` accepts the wire letter too (``"w"``), so a broker can pass what it read;
    an unknown letter becomes ``SignalKind.UNKNOWN`` (a stray PUBLISH on the channel
    must not kill a worker's listener).
    """

    queue: str
    kind: SignalKind
    value: str

    def __init__(self, queue: str, kind: SignalKind | str, value: str = "") -> None:
        object.__setattr__(self, "queue", queue)
        object.__setattr__(self, "kind", SignalKind(kind))
        object.__setattr__(self, "value", value)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reclaimed:
    """What one reclaim pass over a queue did."""

    deliveries: list[Delivery]  # now ours, each with its new delivery count
    cancelled: list[str] = dataclasses.field(default_factory=list)  # finished: cancel requested
    lost: list[str] = dataclasses.field(default_factory=list)  # dead-lettered: body deleted
    more: bool = False  # the pass stopped at its bound: look again soon


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LeaseCheck:
    """What renewing a worker's leases found (everything else was renewed)."""

    lost: list[Delivery] = dataclasses.field(default_factory=list)  # superseded elsewhere
    deleted: list[Delivery] = dataclasses.field(default_factory=list)  # dead-lettered as lost
    cancel: list[Delivery] = dataclasses.field(default_factory=list)  # cancel requested


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerTiming:
    """Broker-side timings a worker paces itself by."""

    block_s: float  # longest wait for new work before looking again
    claim_stale_after_s: float  # a lease not renewed for this long may be reclaimed
    claim_check_interval_s: float  # how often to look for abandoned work


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How much finished work the broker keeps (set by the Server; bounded by design)."""

    keep_completed: int = 1000
    processed_ttl_s: float = 86400.0
    dead_max: int = 10_000
    dead_ttl_s: float = 7 * 86400.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRegistration:
    name: str
    host: str
    pid: int
    queues: Sequence[str]
    concurrency: int
    started_ms: int


class ProducerBroker(Protocol):
    """The operations a Client runs against its broker."""

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]: ...

    async def cancel(self, task_id: str, queue: str | None) -> bool: ...

    async def wait_replicas(self, replicas: int, timeout_s: float) -> int:
        """Block until ``replicas`` replicas hold this broker's writes; how many did."""

    async def wait_result(self, task_id: str, timeout_s: float | None) -> Finished:
        """How the task ended, waiting for it (pushed, not polled). Raises
        TaskNotFoundError (unknown, or its result expired) or ResultTimeoutError."""

    async def aclose(self) -> None: ...


class IdleHandoff(Protocol):
    """One-hop idle pickup (optional). A ``fetch(..., offer=True)`` that finds nothing
    registers this consumer for ``count`` tasks: the next enqueues deliver to it
    directly and :meth:`receive` gets them. Every later fetch withdraws the
    registration and returns what was handed over meanwhile; ``unblock=True`` also
    ends a :meth:`receive` still waiting."""

    receive_timeout_s: float

    async def receive(self, queue: str) -> list[Delivery]:
        """A task handed to this consumer, or [] when the wait ended without one."""

    async def withdraw(self, queue: str) -> None:
        """Take no more hand-offs (shutdown)."""


class WorkerBroker(Protocol):
    """The operations a worker runs against its broker."""

    @property
    def consumer(self) -> str: ...

    @property
    def timing(self) -> WorkerTiming: ...

    @property
    def limits(self) -> LimitBroker:
        """Global limiters' state (strego.limits)."""

    async def aclose(self) -> None: ...

    async def prepare(self, queues: Sequence[str], retention: Retention | None = None) -> None:
        """Record/check the queues' consumer group and create it; warn about eviction."""

    async def register(self, registration: WorkerRegistration) -> None:
        """Take this consumer name for this process (refused while another lives)."""

    async def take_over(self, queue: str) -> int:
        """Hand what this consumer name held before (a dead predecessor) to reclaim."""

    async def fetch(
        self, wants: Sequence[tuple[str, int]], *, offer: bool = False, unblock: bool = False
    ) -> dict[str, list[Delivery] | None]:
        """Up to ``count`` tasks per queue, highest priority first; None if paused;
        :class:`~strego.broker.limiting.Held` (empty) when a queue-wide limit
        allows none now. ``offer``/``unblock``: see :class:`IdleHandoff`."""

    @property
    def handoff(self) -> IdleHandoff | None:
        """One-hop idle pickup, when the broker has it."""

    async def apply(self, outcomes: Sequence[tuple[Delivery, Outcome]]) -> list[str]:
        """Apply outcomes (each atomically); return ids of tasks whose delivery was
        superseded. Raises on transient errors: the caller retries until they land."""

    async def promote_due(self, queue: str) -> float | None:
        """Move due tasks to their stream; seconds until the next one is due."""

    async def claim_stale(
        self, queue: str, min_idle_s: float, limit: int, holding: Collection[str] = ()
    ) -> Reclaimed:
        """Reclaim up to ``limit`` abandoned entries; never the ``holding`` entry ids
        (this worker's leases on the queue), whoever Redis says holds them."""

    async def renew(self, leases: Sequence[tuple[Delivery, str]]) -> LeaseCheck:
        """Renew (delivery, task id) leases; say which are no longer ours."""

    async def trim_dead(self, queue: str) -> None:
        """Drop dead letters past their age or count (also done as new ones arrive)."""

    async def listen(
        self, queues: Sequence[str], on_signal: Callable[[QueueSignal], None]
    ) -> Callable[[], Awaitable[None]]:
        """Subscribe to the queues' channels; returns an async stop function."""

    async def heartbeat(
        self,
        registration: WorkerRegistration,
        in_flight: int,
        stats: Mapping[str, str] | None = None,
    ) -> None:
        """Say this worker is alive; ``stats`` (bounded) go into its description."""

    async def deregister(self, registration: WorkerRegistration, queues: Sequence[str]) -> None: ...

    async def cleanup_consumers(self, queue: str, idle_s: float) -> int: ...
