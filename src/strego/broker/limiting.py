"""The limits seam: what a worker needs from its broker to apply global limits.

The worker decides (which limits a task counts against, whether to wait or park);
the broker keeps each limiter's state and answers one question at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from strego.limits import ConcurrencyLimit, Limit

if TYPE_CHECKING:
    from strego.broker.base import Delivery

__all__ = ["Held", "LimitBroker", "Slot", "Verdict"]


class Held(list["Delivery"]):
    """A fetch's answer for a queue whose queue-wide limit allows nothing now: no
    deliveries (an empty list, so code that only wants deliveries needs no change),
    and ``wait_s``, how long until the limit allows more."""

    def __init__(self, wait_s: float) -> None:
        super().__init__()
        self.wait_s = wait_s


class Slot(NamedTuple):  # a tuple: built for every task that asks for a slot
    """A concurrency slot one delivery holds; ``member`` names that delivery. (Slots of
    a worker's pool, see take_ahead, are the broker's to keep.)"""

    limit: ConcurrencyLimit
    scope: str | None  # a queue-wide limit: its queue (its keys live in that slot)
    key: str
    member: str


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """A limiter's answer for one task.

    ``wait_s == 0``: start now. ``reserved``: a start is reserved ``wait_s`` from now
    (wait in the worker, then start without asking again). Otherwise: come back in
    ``wait_s`` and ask again (the task is parked meanwhile)."""

    wait_s: float
    reserved: bool = False

    @property
    def now(self) -> bool:
        return self.wait_s == 0


class LimitBroker(Protocol):
    async def declare(self, limits: Sequence[tuple[Limit, str | None]]) -> None:
        """Record what this worker enforces (for Inspector.limits); idempotent."""

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
        """May the task start? A concurrency slot granted is held by ``member``; a
        rate limiter reserves a start up to ``max_wait_s`` ahead. Asking again for the
        same task or delivery is idempotent (a crash between asking and parking loses
        nothing)."""

    def take_ahead(self, limit: Limit) -> bool:
        """For a task of an unkeyed task-type limit: whether a start taken ahead for
        the last fetch's tasks, or a slot of the worker's pool, was there (a slot is
        then given back with :meth:`put_back`); False: ask."""

    def put_back(self, limits: Sequence[Limit]) -> None:
        """A task that took pool slots for ``limits`` ended (rate limits: ignored)."""

    async def release_held(self) -> None:
        """Release the slots the worker holds for no task (at shutdown)."""

    def release_soon(self, slots: Sequence[Slot], *, ran: bool = True) -> asyncio.Future[Any]:
        """:meth:`release`, queued at once (the next fetch may carry it)."""

    async def release(self, slots: Sequence[Slot], *, ran: bool = True) -> None:
        """Free concurrency slots (every outcome of the task, whatever it was).
        ``ran=False``: given back before the handler started (their hold time is not
        a handler's, so it must not shorten the limiter's wait estimate)."""

    async def renew(self, slots: Sequence[Slot]) -> None:
        """Extend the leases of slots whose tasks still run here."""
