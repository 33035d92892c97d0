"""The loops that keep a worker's standing in Redis: lease renewal, heartbeat, idle-
consumer cleanup and the dead-letter age trim. Each logs and retries; none can kill
the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from strego.broker.base import LeaseCheck, WorkerBroker, WorkerRegistration
from strego.worker.config import ServerConfig
from strego.worker.leases import Lease, LeaseTable
from strego.worker.maintenance import every
from strego.worker.stats import WorkerStats

__all__ = ["Upkeep"]

log = logging.getLogger("strego")


class Upkeep:
    def __init__(
        self,
        config: ServerConfig,
        broker: WorkerBroker,
        leases: LeaseTable,
        registration: WorkerRegistration,
        clock: Callable[[], float],
        stats: WorkerStats,
    ) -> None:
        self._config = config
        self._stats = stats
        self.redis_answered_at: float | None = None  # clock time of the last heartbeat
        self._broker = broker
        self._leases = leases
        self._registration = registration
        self._clock = clock
        self._queues = list(config.queues)

    def loops(self, in_flight: Callable[[], int]) -> list[asyncio.Task[None]]:
        timing = self._broker.timing

        async def heartbeat() -> None:
            fields = self._stats.heartbeat_fields()
            await self._broker.heartbeat(self._registration, in_flight(), fields)
            self.redis_answered_at = self._clock()

        jobs = [
            ("lease renewal", max(0.05, timing.claim_stale_after_s / 3), self.renew),
            ("heartbeat", self._config.heartbeat_interval_s, heartbeat),
            ("dead-letter trim", min(60.0, self._config.dead_letter_ttl_s / 4), self._trim),
        ]
        if self._config.cleanup_interval_s is not None:
            jobs.append(("consumer cleanup", self._config.cleanup_interval_s, self._cleanup))
        return [
            asyncio.create_task(every(name, interval, job), name=f"strego-{name}")
            for name, interval, job in jobs
        ]

    async def renew(self) -> None:
        """Renew every lease against its fence; act on what Redis says is not ours."""
        leases = self._leases.renewable()
        if not leases:
            return
        sent = self._clock()
        self._settle(await self._broker.renew(leases), sent)

    async def verify(self, lease: Lease) -> None:
        """Before starting a delivery the worker stalled on: is it still ours?"""
        sent = self._clock()
        try:
            check = await self._broker.renew([(lease.delivery, lease.task_id)])
        except Exception as exc:  # cannot tell: the fence still drops a stale outcome
            log.warning("could not check the lease of %s before starting (%s)", lease.task_id, exc)
            return
        self._settle(check, sent)

    def _settle(self, check: LeaseCheck, sent: float) -> None:
        superseded = self._leases.supersede([*check.lost, *check.deleted])
        for lease in superseded:
            log.warning(
                "lease lost: task %s was %s; its handler here is stopped",
                lease.task_id or lease.delivery.entry_id,
                "dead-lettered (its entry was deleted)"
                if lease.delivery in check.deleted
                else "reclaimed by another worker",
                extra={"task_id": lease.task_id, "queue": lease.delivery.queue},
            )
        for delivery in check.cancel:
            found = self._leases.get(delivery)
            if found is not None and found.task_id:
                self._leases.request_cancel(found.task_id)
        self._leases.confirm(sent)

    async def _cleanup(self) -> None:
        for queue in self._queues:
            removed = await self._broker.cleanup_consumers(queue, self._config.cleanup_idle_s)
            if removed:
                log.info("removed %d idle consumers", removed, extra={"queue": queue})

    async def _trim(self) -> None:
        for queue in self._queues:
            await self._broker.trim_dead(queue)
