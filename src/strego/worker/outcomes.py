"""Outcome batching: finished tasks are acknowledged in pipelined batches.

While one batch is in flight the next accumulates, so acks cost about one round trip
per batch instead of one per task, without adding latency when the worker is quiet.
If Redis is unreachable the batch is kept and retried: until its outcome lands a task
stays pending (and leased), so at worst it runs again; it is never lost.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from strego.broker.base import Delivery, WorkerBroker
from strego.envelope import TaskMessage
from strego.events import TaskEvent
from strego.outcome import Cancelled, Dead, Outcome, Parked, Released, Retry, Succeeded
from strego.results import split_stored
from strego.store.base import NullHistory, TaskHistory
from strego.task import TaskState
from strego.worker.leases import Lease, LeaseTable
from strego.worker.stats import WorkerStats

__all__ = ["OutcomeSink"]

log = logging.getLogger("strego")
_STATE = {
    Succeeded: TaskState.COMPLETED,
    Retry: TaskState.RETRY,
    Dead: TaskState.DEAD,
    Cancelled: TaskState.CANCELLED,
}


class OutcomeSink:
    def __init__(
        self,
        broker: WorkerBroker,
        history: TaskHistory,
        leases: LeaseTable,
        worker: str,
        stats: WorkerStats,
    ) -> None:
        self._broker = broker
        self._stats = stats  # counts outcomes once they landed (a lost one is not ours)
        self._history = history
        # Without a store, building a TaskEvent per outcome is pure cost (measured:
        # several us of the worker's CPU per task; benchmarks/).
        self._records = not isinstance(history, NullHistory)
        self._leases = leases  # a lease is renewed until its outcome lands, then dropped
        self._worker = worker
        self._pending: list[tuple[Lease, Outcome, TaskMessage | None]] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, lease: Lease, outcome: Outcome, message: TaskMessage | None) -> None:
        self._pending.append((lease, outcome, message))
        self._idle.clear()
        self._ready.set()

    async def run(self) -> None:
        """Apply outcomes forever (cancel to stop; call :meth:`drain` first)."""
        delay = 0.05
        while True:
            await self._ready.wait()
            batch, self._pending = self._pending, []
            self._ready.clear()
            try:
                lost = await self._broker.apply([(lease.delivery, o) for lease, o, _ in batch])
            except Exception as exc:  # Redis down or refusing writes: keep, retry, backoff
                log.warning("could not record %d outcomes, retrying (%s)", len(batch), exc)
                self._pending[:0] = batch
                self._ready.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            self._settled(batch, set(lost))
            if not self._pending:
                self._idle.set()

    def _settled(
        self, batch: list[tuple[Lease, Outcome, TaskMessage | None]], lost: set[str]
    ) -> None:
        now = datetime.now(UTC)
        for lease, outcome, message in batch:
            self._leases.drop(lease)
            if isinstance(outcome, Released):
                continue  # back in its queue (or handed over): no transition to record
            task_id = _task_id(outcome, message)
            if task_id in lost:
                log.warning(
                    "late outcome dropped: task %s was reclaimed by another worker",
                    task_id,
                    extra={"task_id": task_id, "queue": lease.delivery.queue},
                )
                continue
            if isinstance(outcome, Parked):
                continue  # held back by a limit: scheduled again, no transition of its own
            if self._records:
                event = _event(outcome, message, lease.delivery, now, self._worker)
                self._history.record(event)
                task_type = event.type
            else:
                task_type = _type(outcome, message)
            self._stats.finished(lease.delivery.queue, task_type, outcome, lease.ran)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every outcome put so far is applied; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


def _task_id(outcome: Outcome, message: TaskMessage | None) -> str:
    if isinstance(outcome, Retry | Dead):
        return outcome.message.id
    return outcome.task_id


_Final = Succeeded | Retry | Dead | Cancelled


def _type(outcome: _Final, message: TaskMessage | None) -> str:
    final = outcome.message if isinstance(outcome, Retry | Dead) else message
    return final.type if final else "?"


def _event(
    outcome: _Final,
    message: TaskMessage | None,
    delivery: Delivery,
    now: datetime,
    worker: str,
) -> TaskEvent:
    final = outcome.message if isinstance(outcome, Retry | Dead) else message
    return TaskEvent(
        task_id=_task_id(outcome, message),
        queue=delivery.queue,
        type=_type(outcome, message),
        state=_STATE[type(outcome)],
        at=now,
        retry_count=final.retry_count if final else 0,
        max_retry=final.max_retry if final else 0,
        error=outcome.message.last_error if isinstance(outcome, Retry | Dead) else None,
        traceback=outcome.message.traceback if isinstance(outcome, Retry | Dead) else None,
        dead_reason=outcome.reason.value if isinstance(outcome, Dead) else None,
        # An unreadable entry never had a creation event: keep its raw bytes here.
        payload=outcome.message.payload if isinstance(outcome, Dead) and message is None else None,
        worker=worker,
        duration_ms=outcome.duration_s * 1000,
        workflow_id=final.workflow_id if final else None,
        **_result_fields(outcome),
    )


def _result_fields(outcome: _Final) -> dict[str, Any]:
    """A completed task's result for the history row: its encoded value and serializer."""
    if not isinstance(outcome, Succeeded) or outcome.result is None:
        return {}
    serializer, data = split_stored(outcome.result)
    return {"result": data, "result_serializer": serializer}
