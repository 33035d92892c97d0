"""The running worker: fetch with continuous concurrency, dispatch, leases, shutdown.

One Engine lives between ``Server.start()`` and ``Server.stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime

from strego.broker.base import Delivery, QueueSignal, Retention, WorkerBroker, WorkerRegistration
from strego.events import TaskEvent
from strego.store.base import TaskHistory
from strego.task import TaskState
from strego.worker.config import ServerConfig
from strego.worker.maintenance import every, run_scheduler
from strego.worker.outcomes import OutcomeSink
from strego.worker.runner import Attempt, Runner
from strego.worker.selector import QueueSelector
from strego.worker.threads import DaemonThreadPool

__all__ = ["Engine"]

log = logging.getLogger("strego")


class Engine:
    def __init__(
        self,
        config: ServerConfig,
        broker: WorkerBroker,
        runner_factory: Callable[[Executor, set[str]], Runner],
        history: TaskHistory,
    ) -> None:
        self._config = config
        self._broker = broker
        self._history = history
        self._timing = broker.timing
        self._queues = list(config.queues)
        self._executor = DaemonThreadPool(config.concurrency)
        self._cancel_requested: set[str] = set()
        self._runner = runner_factory(self._executor, self._cancel_requested)
        self._selector = QueueSelector(config.queues, strict=config.strict_priority)
        self._sink = OutcomeSink(broker, history, self._release, broker.consumer)
        self._in_flight = 0
        self._slot_freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._sooner = asyncio.Event()
        self._dry: set[str] = set()
        self._backlog: deque[Delivery] = deque()
        self._holding: dict[tuple[str, int, str], Delivery] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stop_listening: Callable[[], Awaitable[None]] | None = None
        self._fetcher: asyncio.Task[None] | None = None
        self.registration = WorkerRegistration(
            name=broker.consumer,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self._queues,
            concurrency=config.concurrency,
            started_ms=int(time.time() * 1000),
        )

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        await self._until_ready()
        self._stop_listening = await self._broker.listen(self._queues, self._on_signal)
        self._loops = [
            asyncio.create_task(self._sink.run(), name="strego-outcomes"),
            asyncio.create_task(
                run_scheduler(self._broker, self._queues, self._sooner, self._timing.block_s),
                name="strego-scheduler",
            ),
            self._periodic("lease renewal", self._renew_interval(), self._renew),
            self._periodic("reclaim", self._timing.claim_check_interval_s, self._reclaim),
            self._periodic("heartbeat", self._config.heartbeat_interval_s, self._heartbeat),
        ]
        if self._config.cleanup_interval_s is not None:
            self._loops.append(
                self._periodic("consumer cleanup", self._config.cleanup_interval_s, self._cleanup)
            )
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="strego-fetch")

    async def _until_ready(self) -> None:
        """Create groups and pick up our own pending entries; wait out a Redis outage."""
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
                for queue in self._queues:
                    for delivery in await self._broker.own_pending(queue, self._config.concurrency):
                        self._hold(delivery)
                        self._backlog.append(delivery)
                return
            except Exception as exc:
                log.warning(
                    "worker cannot reach Redis at start (%s); retrying in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _periodic(
        self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]
    ) -> asyncio.Task[None]:
        return asyncio.create_task(every(name, interval_s, job), name=f"strego-{name}")

    async def stop(self) -> None:
        """Graceful: stop fetching, let handlers finish (bounded), record outcomes."""
        if self._fetcher is not None:
            await cancel_and_wait([self._fetcher])
        if self._tasks:
            _, unfinished = await asyncio.wait(self._tasks, timeout=self._config.shutdown_timeout_s)
            for task in unfinished:
                task.cancel()  # no outcome: the entry stays pending and is reclaimed
            if unfinished:
                log.warning("shutdown: %d tasks cancelled, left pending", len(unfinished))
                await asyncio.wait(unfinished, timeout=5)
        if not await self._sink.drain(timeout_s=10):
            log.warning("shutdown: some outcomes could not be recorded; tasks stay pending")
        await cancel_and_wait(self._loops)
        if self._stop_listening is not None:
            await self._stop_listening()
        with contextlib.suppress(Exception):
            await self._broker.deregister(self.registration, self._queues)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- fetching ---------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        failures = 0
        while True:
            free = self._config.concurrency - self._in_flight
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            while self._backlog and free > 0:
                self._dispatch(self._backlog.popleft())
                free -= 1
            plan = self._selector.plan(free, self._dry)
            if not plan:
                await self._wait_for_work()
                continue
            self._wake.clear()
            try:
                found = await self._broker.fetch(plan)
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(5.0, 0.05 * 2**failures)
                log.warning("fetch failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._take(found)

    def _take(self, found: dict[str, list[Delivery] | None]) -> None:
        # A wake-up that arrived while this fetch was in flight may announce work the
        # fetch could not see yet: then an empty answer must not mark the queue dry,
        # or the wake-up is lost and the task waits up to `block` seconds (found by
        # tests/faults/test_wakeups.py: pickups took up to 5 s instead of ~10 ms).
        woken = self._wake.is_set()
        for queue, deliveries in found.items():
            if not deliveries:  # empty or paused: wait for a wake-up before asking again
                if not woken:
                    self._dry.add(queue)
                continue
            for delivery in deliveries:
                self._hold(delivery)
                self._dispatch(delivery)

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._timing.block_s)
        if not self._wake.is_set():
            self._dry.clear()  # block timed out: look again (covers missed wake-ups)
        self._wake.clear()

    def _on_signal(self, signal: QueueSignal) -> None:
        if signal.kind == "w":
            self._dry.discard(signal.queue)
            self._wake.set()
        elif signal.kind == "s":
            self._sooner.set()
        elif signal.kind == "c":
            running = self._running.get(signal.value)
            if running is not None:
                self._cancel_requested.add(signal.value)
                running.cancel()

    # -- running ----------------------------------------------------------------

    def _dispatch(self, delivery: Delivery) -> None:
        self._in_flight += 1
        task = asyncio.create_task(self._process(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, delivery: Delivery) -> None:
        try:
            prepared = self._runner.prepare(delivery)
            if isinstance(prepared, Attempt):
                attempt = prepared
            else:
                message, handler, payload = prepared
                self._record_active(delivery, message.id, message.type, message.retry_count)
                current = asyncio.current_task()
                if current is not None:
                    self._running[message.id] = current
                try:
                    attempt = await self._runner.execute(message, handler, payload)
                finally:
                    self._running.pop(message.id, None)
            self._sink.put(delivery, attempt.outcome, attempt.message)
            if attempt.holdover is not None:
                with contextlib.suppress(Exception):
                    await attempt.holdover
        except asyncio.CancelledError:
            pass  # shutdown: the entry stays pending and will be reclaimed
        except Exception:
            # Stop renewing its lease, so it is reclaimed like a crashed worker's task and,
            # if the error repeats, dead-lettered after max_deliveries. Renewing it forever
            # stranded it as "active" with no retry and no dead letter (e.g. a retry policy
            # that raises; found by tests/faults).
            self._release(delivery)
            log.exception("unexpected error running %s; it will be redelivered", delivery.entry_id)
        finally:
            self._in_flight -= 1
            self._slot_freed.set()

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

    # -- leases -----------------------------------------------------------------

    def _hold(self, delivery: Delivery) -> None:
        self._holding[(delivery.queue, delivery.band, delivery.entry_id)] = delivery

    def _release(self, delivery: Delivery) -> None:
        self._holding.pop((delivery.queue, delivery.band, delivery.entry_id), None)

    def _renew_interval(self) -> float:
        return max(0.05, self._timing.claim_stale_after_s / 3)

    async def _renew(self) -> None:
        if self._holding:
            lost = await self._broker.renew(list(self._holding.values()))
            if lost:
                log.warning("lease lost on %d entries (reclaimed elsewhere)", len(lost))

    async def _reclaim(self) -> None:
        room = self._config.concurrency - len(self._backlog)
        for queue in self._queues:
            if room <= 0:
                return
            claimed, deleted = await self._broker.claim_stale(
                queue, self._timing.claim_stale_after_s, room
            )
            if claimed or deleted:
                log.info(
                    "reclaimed %d stale tasks, %d lost entries dead-lettered",
                    len(claimed),
                    len(deleted),
                    extra={"queue": queue},
                )
            for delivery in claimed:
                self._hold(delivery)
                self._backlog.append(delivery)
            room -= len(claimed)
        if self._backlog:
            self._slot_freed.set()
            self._wake.set()

    async def _heartbeat(self) -> None:
        await self._broker.heartbeat(self.registration, self._in_flight)

    async def _cleanup(self) -> None:
        for queue in self._queues:
            removed = await self._broker.cleanup_consumers(queue, self._config.cleanup_idle_s)
            if removed:
                log.info("removed %d idle consumers", removed, extra={"queue": queue})


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
