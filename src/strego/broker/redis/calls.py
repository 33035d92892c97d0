"""Building script calls (keys + arguments) and parsing their replies: no I/O here."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strego.broker.base import Delivery, EnqueueRequest, EnqueueResult
from strego.broker.redis.connection import text
from strego.broker.redis.keys import HANDOVER_CONSUMER, QueueKeys
from strego.broker.redis.scripts import ScriptCall
from strego.envelope import encode
from strego.outcome import Dead, Parked, Retry
from strego.task import TaskState

if TYPE_CHECKING:
    from strego.broker.redis.broker import RedisBroker

# Index record state letter (see lua/_lib.lua) → the state enqueue reports.
_RECORD_STATES = {
    "p": TaskState.PENDING,
    "k": TaskState.ACTIVE,
    "s": TaskState.SCHEDULED,
    "r": TaskState.RETRY,
    "d": TaskState.DEAD,
    "c": TaskState.COMPLETED,
    "x": TaskState.CANCELLED,
}

__all__ = [
    "AckItem",
    "ack_call",
    "dead_call",
    "deliveries",
    "enqueue_call",
    "enqueue_many_call",
    "enqueue_result",
    "handover_one_call",
    "pairs",
    "release_call",
    "retry_call",
    "watch_call",
]


def enqueue_call(broker: RedisBroker, request: EnqueueRequest) -> ScriptCall:
    message = request.message
    streams, index, bodies, scheduled, stats, tag, idle, channel, handoff, paused = _enqueue_keys(
        broker.config.prefix, message.queue
    )
    delay_ms = -1 if request.delay_s is None else int(request.delay_s * 1000)
    at_ms = -1 if request.process_at is None else int(request.process_at.timestamp() * 1000)
    keys = broker.keys(message.queue) if message.unique_key or message.explicit_id else None
    return (
        broker.scripts.enqueue,
        [
            streams[message.priority],
            index,
            bodies,
            scheduled,
            stats,
            # Unused keys get a placeholder in the queue's slot (a cluster refuses
            # a script whose keys span slots): the tag itself, never a real key.
            keys.unique(message.unique_key) if keys and message.unique_key else tag,
            keys.processed(message.id) if keys and message.explicit_id else tag,
            idle,
            handoff,
            paused,
        ],
        [
            message.id,
            encode(message),
            message.priority,
            delay_ms,
            at_ms,
            int(request.unique_ttl_s * 1000),
            channel,
            int(bool(message.unique_key)),
            int(message.explicit_id),
        ],
    )


@functools.lru_cache(maxsize=1024)
def _enqueue_keys(
    prefix: str, queue: str
) -> tuple[list[str], str, str, str, str, str, str, str, str, str]:
    """The fixed keys of one queue's enqueue call, built once (per-task f-strings were a
    measurable share of the single-enqueue path). Callers must not mutate them."""
    keys = QueueKeys(prefix, queue)
    return (
        keys.streams,
        keys.index,
        keys.bodies,
        keys.scheduled,
        keys.stats,
        keys.tag,
        keys.idle,
        keys.channel,
        keys.handoff,
        keys.paused,
    )


def enqueue_many_call(
    broker: RedisBroker, queue: str, requests: Sequence[EnqueueRequest]
) -> ScriptCall:
    """One call enqueueing many tasks of one queue (see lua/enqueue_many.lua)."""
    keys = broker.keys(queue)
    key_list: list[str] = [
        *keys.streams, keys.index, keys.bodies, keys.scheduled, keys.stats, keys.idle,
    ]  # fmt: skip
    args: list[str | bytes | int] = [keys.channel]
    for request in requests:
        message = request.message
        unique_at = processed_at = 0
        if message.unique_key:
            key_list.append(keys.unique(message.unique_key))
            unique_at = len(key_list)
        if message.explicit_id:
            key_list.append(keys.processed(message.id))
            processed_at = len(key_list)
        args += [
            message.id,
            encode(message),
            message.priority,
            -1 if request.delay_s is None else int(request.delay_s * 1000),
            -1 if request.process_at is None else int(request.process_at.timestamp() * 1000),
            int(request.unique_ttl_s * 1000),
            unique_at,
            processed_at,
        ]
    return broker.scripts.enqueue_many, key_list, args


@dataclasses.dataclass(frozen=True, slots=True)
class AckItem:
    """One completed or cancelled task of an ack call."""

    delivery: Delivery
    task_id: str
    state: str  # 'c' completed, 'x' cancelled
    explicit: bool
    duration_s: float
    result: bytes | None = None  # encoded (strego.results); None: nothing kept
    result_ttl_s: float = 0.0


def ack_call(broker: RedisBroker, queue: str, items: list[AckItem], minute: int) -> ScriptCall:
    """Completed/cancelled outcomes of one queue, results included (see lua/ack.lua).

    A task's result key is passed when it has a result, and for every explicit id (the
    id may have run before: its old result must not answer for this run)."""
    keys = broker.keys(queue)
    extra: list[str] = []
    args: list[str | bytes | int | float] = [
        broker.config.group,
        broker.config.consumer,
        broker.retention.keep_completed,
        int(broker.retention.processed_ttl_s * 1000),
        str(minute),
    ]
    for item in items:
        if item.explicit:
            extra.append(keys.processed(item.task_id))
        result_ttl: str | int = ""
        if item.result is not None or item.explicit:
            extra.append(keys.result(item.task_id))
            result_ttl = max(1, int(item.result_ttl_s * 1000)) if item.result is not None else 0
        args += [
            item.delivery.entry_id,
            item.task_id,
            item.delivery.band,
            item.state,
            int(item.explicit),
            item.delivery.deliveries,
            int(item.duration_s * 1000),
            result_ttl,
            item.result if item.result is not None else "",
        ]
    return (
        broker.scripts.ack,
        [
            *keys.streams,
            keys.index,
            keys.bodies,
            keys.finished,
            keys.stats,
            keys.throughput(minute // 60),
            keys.waiters,
            *extra,
        ],
        args,
    )


def watch_call(
    broker: RedisBroker, queue: str, task_ids: Sequence[str], lease_ms: int
) -> ScriptCall:
    """Look up how tasks ended; register as their waiter when lease_ms > 0 (watch.lua)."""
    keys = broker.keys(queue)
    return (
        broker.scripts.watch,
        [keys.index, keys.bodies, keys.waiters, *(keys.result(t) for t in task_ids)],
        [lease_ms, *task_ids],
    )


def retry_call(broker: RedisBroker, delivery: Delivery, outcome: Retry, minute: int) -> ScriptCall:
    keys = broker.keys(delivery.queue)
    return (
        broker.scripts.retry,
        [
            keys.stream(delivery.band),
            keys.index,
            keys.bodies,
            keys.retry,
            keys.stats,
            keys.throughput(minute // 60),
            keys.finished,
            keys.waiters,
        ],
        [
            broker.config.group,
            broker.config.consumer,
            delivery.entry_id,
            outcome.message.id,
            encode(outcome.message),
            int(outcome.delay_s * 1000),
            delivery.band,
            str(minute),
            keys.channel,
            broker.retention.keep_completed,
            delivery.deliveries,
            int(outcome.duration_s * 1000),
            int(outcome.counted),
        ],
    )


def park_call(broker: RedisBroker, delivery: Delivery, outcome: Parked) -> ScriptCall:
    """Park a task a global limit holds back (lua/park.lua): fenced like any outcome."""
    keys = broker.keys(delivery.queue)
    return (
        broker.scripts.park,
        keys.layout(),
        [
            broker.group,
            broker.config.consumer,
            delivery.band,
            delivery.entry_id,
            delivery.deliveries,
            outcome.task_id,
            outcome.blob,
            max(1, int(outcome.delay_s * 1000)),
            keys.channel,
            broker.retention.keep_completed,
        ],
    )


def dead_call(broker: RedisBroker, delivery: Delivery, outcome: Dead, minute: int) -> ScriptCall:
    keys = broker.keys(delivery.queue)
    return (
        broker.scripts.dead,
        [
            keys.stream(delivery.band),
            keys.index,
            keys.bodies,
            keys.dead,
            keys.stats,
            keys.throughput(minute // 60),
            keys.waiters,
        ],
        [
            broker.config.group,
            broker.config.consumer,
            delivery.entry_id,
            outcome.message.id,
            encode(outcome.message),
            delivery.band,
            broker.retention.dead_max,
            int(broker.retention.dead_ttl_s * 1000),
            str(minute),
            delivery.deliveries,
            int(outcome.duration_s * 1000),
        ],
    )


def release_call(broker: RedisBroker, queue: str, items: list[tuple[Delivery, str]]) -> ScriptCall:
    """Give (delivery, task id) pairs back to their queue at once (see lua/release.lua)."""
    keys = broker.keys(queue)
    args: list[str | int] = [
        broker.config.group,
        broker.config.consumer,
        keys.channel,
        queue,
        broker.retention.keep_completed,
        broker.retention.dead_max,
        int(broker.retention.dead_ttl_s * 1000),
    ]
    for delivery, task_id in items:
        args += [delivery.band, delivery.entry_id, delivery.deliveries, task_id]
    return broker.scripts.release, keys.layout(), args


def handover_one_call(broker: RedisBroker, delivery: Delivery) -> ScriptCall:
    """Hand one delivery to the hand-over consumer, its count kept (see lua/handover.lua)."""
    keys = broker.keys(delivery.queue)
    return (
        broker.scripts.handover,
        keys.streams,
        [
            broker.config.group,
            broker.config.consumer,
            HANDOVER_CONSUMER,
            keys.channel,
            "one",
            "0",
            delivery.band,
            delivery.entry_id,
            delivery.deliveries,
        ],
    )


def pairs(fields: Any) -> dict[bytes, bytes]:
    if isinstance(fields, dict):
        return fields
    return {fields[i]: fields[i + 1] for i in range(0, len(fields) - 1, 2)}


def deliveries(queue: str, flat: list[Any]) -> list[Delivery]:
    return [
        Delivery(queue, int(flat[i]), text(flat[i + 1]), pairs(flat[i + 2]))
        for i in range(0, len(flat), 3)
    ]


def enqueue_result(request: EnqueueRequest, reply: Any) -> EnqueueResult:
    message = request.message
    status, ref = text(reply[0]), text(reply[1])
    if status == "duplicate":
        return EnqueueResult(message.id, message.queue, None, duplicate_of=ref)
    if status == "scheduled":
        at = datetime.fromtimestamp(int(ref) / 1000, UTC)
        return EnqueueResult(message.id, message.queue, TaskState.SCHEDULED, at)
    if status == "exists":  # already enqueued (a retried call, or a live explicit id)
        state = _RECORD_STATES.get(ref[:1], TaskState.PENDING)
        return EnqueueResult(message.id, message.queue, state, created=False)
    if status == "processed":  # an explicit id that already ran: a no-op
        return EnqueueResult(message.id, message.queue, TaskState.COMPLETED, created=False)
    return EnqueueResult(message.id, message.queue, TaskState.PENDING)
