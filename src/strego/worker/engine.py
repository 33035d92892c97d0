"""The running worker: fetch and reclaim with continuous concurrency, dispatch, shutdown.

One Engine lives between ``Server.start()`` and ``Server.stop()``. Every delivery it
takes is a :class:`~strego.worker.leases.Lease` in one table shared with the Runner
and the OutcomeSink; the background loops (renewal, heartbeat, cleanup) live in
:mod:`strego.worker.upkeep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime

from strego.broker.base import (
    Delivery,
    IdleHandoff,
    QueueSignal,
    Retention,
    SignalKind,
    WorkerBroker,
    WorkerRegistration,
)
from strego.broker.limiting import Held
from strego.errors import ConfigurationError
from strego.events import TaskEvent
from strego.limits import Limit
from strego.outcome import Cancelled, Released
from strego.store.base import NullHistory, TaskHistory
from strego.task import TaskState
from strego.worker.config import ServerConfig
from strego.worker.gate import LimitGate
from strego.worker.leases import Lease, LeaseTable, Phase
from strego.worker.maintenance import every, run_scheduler
from strego.worker.outcomes import OutcomeSink
from strego.worker.periodic import PeriodicFirer
from strego.worker.runner import Attempt, Runner
from strego.worker.selector import QueueSelector
from strego.worker.stats import WorkerStats
from strego.worker.threads import DaemonThreadPool
from strego.worker.upkeep import Upkeep
from strego.worker.workflows import workflow_loops

__all__ = ["Engine", "Liveness", "cancel_and_wait"]

log = logging.getLogger("strego")


@dataclasses.dataclass(frozen=True, slots=True)
class Liveness:
    """What a liveness probe needs to know (see worker/probes.py)."""

    ready: bool  # Redis answered at start: group checked, consumer name held
    working: bool  # the fetch and outcome loops are running
    redis_silent_s: float | None  # since Redis last answered a heartbeat (None: never)


class Engine:
    def __init__(
        self,
        config: ServerConfig,
        broker: WorkerBroker,
        runner_factory: Callable[[Executor], Runner],
        history: TaskHistory,
        stats: WorkerStats,
        type_limits: Mapping[str, tuple[Limit, ...]] | None = None,
        periodic: PeriodicFirer | None = None,
    ) -> None:
        self._config = config
        self._periodic = periodic  # declared at start, fired at scheduler wake-ups
        self.stats = stats
        self._broker = broker
        self._history = history
        self._records_history = not isinstance(history, NullHistory)  # else skip the events
        self._timing = broker.timing
        self._queues = list(config.queues)
        self._executor = DaemonThreadPool(config.concurrency)
        self._runner = runner_factory(self._executor)
        self._selector = QueueSelector(config.queues, strict=config.strict_priority)
        self._clock = time.monotonic
        self.leases = LeaseTable(self._clock)
        self._sink = OutcomeSink(broker, history, self.leases, broker.consumer, stats)
        self._in_flight = 0
        self._slot_freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._sooner = asyncio.Event()
        self._dry: set[str] = set()
        self._reclaim_due = True  # at start: what a dead predecessor left, what is stale
        self._look_again_at = 0.0  # when dry queues are read again without a wake-up
        self._registered = False  # holds its consumer name: deregister at stop
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stop_listening: Callable[[], Awaitable[None]] | None = None
        self._fetcher: asyncio.Task[None] | None = None
        # One-hop idle pickup (broker/redis/handoff.py): for a worker on one queue without
        # queue-wide limits (several queues would each need their own share of the free
        # slots, and the fetch script must apply queue limits itself).
        only = self._queues[0] if len(self._queues) == 1 else None
        self._handoff = (
            broker.handoff if only is not None and not config.queue_limits.get(only) else None
        )
        self._offered = 0  # slots the last fetch registered for a hand-off
        self._inbox: asyncio.Task[None] | None = None  # a _receive() in flight
        self._inbox_sent = 0.0
        self.registration = WorkerRegistration(
            name=broker.consumer,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            concurrency=config.concurrency,
            started_ms=int(time.time() * 1000),
        )
        self._upkeep = Upkeep(config, broker, self.leases, self.registration, self._clock, stats)
        # Global limits (issue 16): see worker/gate.py.
        self._gate = LimitGate(
            broker,
            type_limits or {},
            config.queue_limits,
            self._clock,
            self._wake.set,
            config.concurrency,
        )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def liveness(self) -> Liveness:
        answered = self._upkeep.redis_answered_at
        loops = [*self._loops, self._fetcher] if self._fetcher is not None else []
        working = bool(loops) and not any(task.done() for task in loops)
        return Liveness(
            ready=self._registered,
            working=working,
            redis_silent_s=None if answered is None else self._clock() - answered,
        )

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        await self._until_ready()
        await self._gate.declare()
        self._stop_listening = await self._broker.listen(self._queues, self._on_signal)
        self._loops = [
            asyncio.create_task(self._sink.run(), name="strego-outcomes"),
            asyncio.create_task(
                run_scheduler(
                    self._broker,
                    self._queues,
                    self._sooner,
                    self._timing.block_s,
                    self._periodic.run_due if self._periodic is not None else None,
                ),
                name="strego-scheduler",
            ),
            *self._upkeep.loops(lambda: self._in_flight),
            *self._gate.loops(),
            asyncio.create_task(
                every("reclaim timer", self._timing.claim_check_interval_s, self._want_reclaim),
                name="strego-reclaim-timer",
            ),
        ]
        self._loops += workflow_loops(self._broker, self._queues, self._config.result_ttl_s)
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="strego-fetch")

    async def _until_ready(self) -> None:
        """Check the queues' group, take the consumer name, hand over what a dead
        predecessor under this name held; wait out a Redis outage (cancellable)."""
        retention = Retention(
            keep_completed=self._config.keep_completed,
            processed_ttl_s=self._config.processed_ttl_s,
            dead_max=self._config.dead_letter_max,
            dead_ttl_s=self._config.dead_letter_ttl_s,
        )
        delay = 0.1
        while True:
            try:
                await self._broker.prepare(self._queues, retention)
                await self._broker.register(self.registration)
                self._registered = True
                for queue in self._queues:
                    if self._handoff is not None:
                        # What a predecessor under this name was handed is its pending
                        # work, given back by take_over: never read it from the inbox.
                        await self._handoff.withdraw(queue)
                    handed = await self._broker.take_over(queue)
                    if handed:
                        log.info(
                            "took over %d tasks a previous %s left pending",
                            handed,
                            self._broker.consumer,
                            extra={"queue": queue},
                        )
                if self._periodic is not None:
                    await self._periodic.declare()
                self._upkeep.redis_answered_at = self._clock()
                return
            except ConfigurationError:
                raise  # a wrong group, a consumer name in use: retrying cannot help
            except Exception as exc:
                log.warning(
                    "worker cannot reach Redis at start (%s); retrying in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        """Graceful: stop taking work, let handlers finish (bounded), hand back the rest.

        Handlers still running after ``shutdown_timeout`` are cancelled and their tasks
        given back to the queue at once (not after claim_stale_after), like tasks that
        were taken but not started; neither counts towards ``max_deliveries``.
        """
        if self._fetcher is not None:
            await cancel_and_wait([self._fetcher])
        await self._withdraw_handoff()
        if self._tasks:
            _, unfinished = await asyncio.wait(self._tasks, timeout=self._config.shutdown_timeout_s)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("shutdown: %d tasks cut off, handed back", len(unfinished))
                await asyncio.wait(unfinished, timeout=5)
        if not await self._sink.drain(timeout_s=10):
            log.warning("shutdown: some outcomes could not be recorded; tasks stay pending")
        await self._gate.drain()
        await cancel_and_wait(self._loops)
        if self._stop_listening is not None:
            await self._stop_listening()
        if self._registered:  # never for a worker refused its name: the entries are another's
            with contextlib.suppress(Exception):
                await self._broker.deregister(self.registration, self._queues)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- fetching and reclaiming -------------------------------------------------------

    async def _fetch_loop(self) -> None:
        failures = 0
        while True:
            free = self._config.concurrency - self._in_flight
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                if self._reclaim_due:
                    if self._offered:  # slots offered for a hand-off: take them back first
                        plan, offer = [(self._queues[0], self._offered)], False
                    else:
                        self._reclaim_due = False
                        free -= await self._reclaim(free)
                        if free <= 0:
                            continue
                        plan, offer = [], self._handoff is not None
                else:
                    plan, offer = [], self._handoff is not None
                plan = plan or self._selector.plan(free, self._dry | self._gate.held())
                if not plan:
                    await self._wait_for_work()
                    continue
                if self._inbox is not None:  # a receive in flight may bring one: its slot
                    plan = [(queue, count - 1) for queue, count in plan]
                self._wake.clear()
                sent = self._clock()
                self._look_again_at = sent + self._timing.block_s
                found = await self._broker.fetch(plan, offer=offer, unblock=self._inbox is not None)
                self._offered = 0  # the fetch withdrew any earlier registration
                await self._collect_inbox(wait=True)
                if offer and found.get(plan[0][0]) == []:
                    self._offered = plan[0][1]  # registered: hand-offs may come now
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(5.0, 0.05 * 2**failures)
                log.warning("fetch failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            if self._take(found, sent, dict(plan)):
                # Let the tasks just dispatched start before the next fetch is built and
                # written: an idle worker's pickup latency is measured up to the
                # handler's start (benchmarks/), and the next fetch can wait a turn.
                await asyncio.sleep(0)

    def _take(
        self, found: dict[str, list[Delivery] | None], sent: float, wanted: dict[str, int]
    ) -> int:
        """Dispatch what a fetch found; returns how many tasks were dispatched."""
        # A wake-up that arrived while this fetch was in flight may announce work the
        # fetch could not see yet: then an empty answer must not mark the queue dry,
        # or the wake-up is lost and the task waits up to `block` seconds (found by
        # tests/faults/test_wakeups.py: pickups took up to 5 s instead of ~10 ms).
        woken = self._wake.is_set()
        dispatched = 0
        for queue, deliveries in found.items():
            if isinstance(deliveries, Held):  # a queue-wide limit: not before its wait
                self._gate.hold(queue, deliveries.wait_s)
                continue
            if not deliveries:  # empty or paused: wait for a wake-up before asking again
                if not woken and wanted.get(queue):  # (asked for none: only withdrew)
                    self._dry.add(queue)
                continue
            for delivery in deliveries:
                self._gate.adopt(self._dispatch(delivery, sent))
            dispatched += len(deliveries)
        return dispatched

    async def _reclaim(self, room: int) -> int:
        """Reclaim what other consumers abandoned: only as much as can start now
        (running tasks count), highest band first; returns how many started."""
        started = 0
        for queue in self._queues:
            if started >= room:
                self._reclaim_due = True  # more may be waiting: look again when free
                break
            sent = self._clock()
            result = await self._broker.claim_stale(
                queue,
                self._timing.claim_stale_after_s,
                room - started,
                self.leases.entry_ids(queue),
            )
            if result.deliveries or result.cancelled or result.lost:
                log.info(
                    "reclaimed %d stale tasks (%d cancelled as requested, %d lost entries "
                    "dead-lettered)",
                    len(result.deliveries),
                    len(result.cancelled),
                    len(result.lost),
                    extra={"queue": queue},
                )
            for delivery in result.deliveries:
                self._dispatch(delivery, sent)
            started += len(result.deliveries)
            if result.more:
                self._reclaim_due = True
        return started

    async def _want_reclaim(self) -> None:
        self._reclaim_due = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        # The deadline is kept across wake-ups that are not about new work (reclaim
        # timers fire more often than `block`): else a queue whose wake-up was lost
        # (a failover dropped the subscription) stayed dry for good (found by
        # tests/cluster/test_failover.py).
        remaining = min(self._look_again_at, self._gate.unheld_at()) - self._clock()
        if remaining > 0:
            if self._handoff is not None and self._offered > 0 and self._inbox is None:
                self._inbox_sent = self._clock()
                self._inbox = asyncio.create_task(
                    self._receive(self._handoff), name="strego-handoff"
                )
            # A wake-up, or a task handed over, whichever comes first. asyncio.wait, not
            # wait_for: on Python 3.11 wait_for drops a cancellation that arrives as the
            # event is set, and a reclaim timer as fast as stop()'s cancel retries (0.1 s)
            # made every retry land that way: stop() hung (seen in CI).
            woken = asyncio.ensure_future(self._wake.wait())
            waits = {woken} if self._inbox is None else {woken, self._inbox}
            try:
                await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            await self._collect_inbox(wait=False)
        if self._clock() >= self._look_again_at:
            self._dry.clear()  # `block` passed: look again (covers missed wake-ups)
        self._wake.clear()

    async def _receive(self, handoff: IdleHandoff) -> None:
        """Wait for a task handed over, and start it right here: dispatching from this
        task rather than from the fetch loop it wakes saves that loop's wake-up (two
        event-loop turns) between the reply and the handler's start."""
        handed = await handoff.receive(self._queues[0])
        self._offered = max(0, self._offered - len(handed))
        for delivery in handed:
            self._gate.adopt(self._dispatch(delivery, self._inbox_sent))

    async def _collect_inbox(self, *, wait: bool) -> None:
        """Settle a finished receive(). ``wait``: a fetch has just released it
        (unblock), so it ends at once; wait for it."""
        receive = self._inbox
        if receive is None or not (wait or receive.done()):
            return
        self._inbox = None
        try:
            # Bounded: released by the fetch's unblock, else by its own timeout.
            await asyncio.wait_for(receive, self._timing.block_s + 5.0)
        except Exception as exc:  # its connection failed: fetch again (re-registers)
            log.warning("waiting for a handed-over task failed (%s)", exc)
        # Fetch again now: to take what else was handed, or to renew the registration
        # (a receive ends empty when it times out, shortly before it would lapse).
        self._dry.discard(self._queues[0])

    async def _withdraw_handoff(self) -> None:
        """At shutdown: no more hand-offs. Anything handed meanwhile is this consumer's
        pending work, which deregister() hands back."""
        if self._inbox is not None:
            self._inbox.cancel()
            with contextlib.suppress(BaseException):
                await self._inbox
            self._inbox = None
        if self._handoff is not None and self._registered:
            with contextlib.suppress(Exception):
                await self._handoff.withdraw(self._queues[0])

    def _on_signal(self, signal: QueueSignal) -> None:
        if signal.kind is SignalKind.WORK:
            self._dry.discard(signal.queue)
            self._wake.set()
        elif signal.kind is SignalKind.SOONER:
            self._sooner.set()
        elif signal.kind is SignalKind.CANCEL:
            self.leases.request_cancel(signal.value)
        elif signal.kind is SignalKind.RECLAIM:
            self._reclaim_due = True
            self._wake.set()

    # -- running ----------------------------------------------------------------

    def _dispatch(self, delivery: Delivery, confirmed_at: float) -> Lease:
        self._in_flight += 1
        lease = self.leases.add(delivery, confirmed_at)
        task = asyncio.create_task(self._process(lease))
        lease.handle = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return lease

    async def _process(self, lease: Lease) -> None:
        try:
            attempt = await self._attempt(lease)
            if attempt is None:  # superseded: another delivery owns the task now
                self.leases.drop(lease)
                return
            self.leases.settle(lease)
            self._sink.put(lease, attempt.outcome, attempt.message)
            if attempt.holdover is not None:
                with contextlib.suppress(Exception):
                    await attempt.holdover
        except asyncio.CancelledError:
            if lease.superseded:
                self.leases.drop(lease)
            elif lease.phase is not Phase.SETTLING:
                # Shutdown cut it off: back to its queue at once, not counted.
                self.leases.settle(lease)
                self._sink.put(lease, Released(lease.task_id), None)
        except Exception:
            # Hand it over (its delivery counted): reclaimed by any worker and, if the
            # error repeats, dead-lettered after max_deliveries. Renewing it forever
            # stranded it as "active" with no retry and no dead letter (e.g. a retry
            # policy that raises; found by tests/faults).
            log.exception("unexpected error running %s; handing it over", lease.delivery.entry_id)
            self.leases.settle(lease)
            self._sink.put(lease, Released(lease.task_id, counted=True), None)
        finally:
            self._gate.release_soon(lease)  # its concurrency slots, whatever the outcome
            self._in_flight -= 1
            self._slot_freed.set()

    async def _attempt(self, lease: Lease) -> Attempt | None:
        """Decode, then run the handler unless the task must not start: a cancel was
        requested, or (after a stall) Redis says the delivery was superseded."""
        prepared = self._runner.prepare(lease.delivery)
        if isinstance(prepared, Attempt):
            return prepared
        message, handler, payload = prepared
        self.leases.identify(lease, message.id)
        parked = await self._gate.admit(lease, message, payload)  # global limits
        if parked is not None:
            return Attempt(parked, message)
        if self.leases.unconfirmed_for(lease) > self._timing.claim_stale_after_s / 2:
            await self._upkeep.verify(lease)  # stalled since it was fetched: still ours?
        if lease.superseded:
            log.warning(
                "task %s was reclaimed elsewhere before it started here; not running it",
                message.id,
                extra={"task_id": message.id, "queue": lease.delivery.queue},
            )
            return None
        if lease.cancel_requested:
            return Attempt(Cancelled(message.id, message.explicit_id), message)
        self._record_active(lease.delivery, message.id, message.type, message.retry_count)
        self.stats.started(lease.delivery.queue, lease.delivery.entry_id)
        self.leases.begin(lease)
        return await self._runner.execute(message, handler, payload, lease)

    def _record_active(
        self, delivery: Delivery, task_id: str, task_type: str, attempt: int
    ) -> None:
        if log.isEnabledFor(logging.DEBUG):  # per task: skip building the fields otherwise
            log.debug(
                "task started",
                extra={
                    "task_id": task_id,
                    "task_type": task_type,
                    "queue": delivery.queue,
                    "attempt": attempt,
                    "worker": self._broker.consumer,
                },
            )
        if not self._records_history:
            return
        self._history.record(
            TaskEvent(
                task_id=task_id,
                queue=delivery.queue,
                type=task_type,
                state=TaskState.ACTIVE,
                at=datetime.now(UTC),
                retry_count=attempt,
                worker=self._broker.consumer,
            )
        )


async def cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again if needed.

    One ``cancel()`` is not always enough on Python 3.11: ``asyncio.wait_for`` drops a
    cancellation that arrives just as the awaited future completes, and redis-py opens
    connections inside ``wait_for``. A loop cancelled while connecting then carries on
    and sleeps a whole interval (up to ``cleanup_interval``), so ``stop()`` would hang.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
