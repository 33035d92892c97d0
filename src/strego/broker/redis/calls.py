"""Building script calls (keys + arguments) and parsing their replies: no I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strego.broker.base import Delivery, EnqueueRequest, EnqueueResult
from strego.broker.redis.connection import text
from strego.broker.redis.keys import HANDOVER_CONSUMER
from strego.broker.redis.scripts import ScriptCall
from strego.envelope import encode
from strego.outcome import Dead, Retry
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
]


def enqueue_call(broker: RedisBroker, request: EnqueueRequest) -> ScriptCall:
    message = request.message
    keys = broker.keys(message.queue)
    delay_ms = -1 if request.delay_s is None else int(request.delay_s * 1000)
    at_ms = -1 if request.process_at is None else int(request.process_at.timestamp() * 1000)
    return (
        broker.scripts.enqueue,
        [
            keys.stream(message.priority),
            keys.index,
            keys.bodies,
            keys.scheduled,
            keys.stats,
            # Unused keys get a placeholder in the queue's slot (a cluster refuses
            # a script whose keys span slots): the tag itself, never a real key.
            keys.unique(message.unique_key) if message.unique_key else keys.tag,
            keys.processed(message.id) if message.explicit_id else keys.tag,
            keys.idle,
        ],
        [
            message.id,
            encode(message),
            message.priority,
            delay_ms,
            at_ms,
            int(request.unique_ttl_s * 1000),
            keys.channel,
            int(bool(message.unique_key)),
            int(message.explicit_id),
        ],
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


AckItem = tuple[Delivery, str, str, bool, float]  # delivery, task id, state, explicit, took s


def ack_call(broker: RedisBroker, queue: str, items: list[AckItem], minute: int) -> ScriptCall:
    """Completed/cancelled outcomes of one queue: (delivery, task id, state, explicit id,
    duration s) each (see lua/ack.lua)."""
    keys = broker.keys(queue)
    markers = [keys.processed(task_id) for _, task_id, _, explicit, _ in items if explicit]
    args: list[str | int | float] = [
        broker.config.group,
        broker.config.consumer,
        broker.retention.keep_completed,
        int(broker.retention.processed_ttl_s * 1000),
        str(minute),
    ]
    for delivery, task_id, state, explicit, duration_s in items:
        args += [
            delivery.entry_id,
            task_id,
            delivery.band,
            state,
            int(explicit),
            delivery.deliveries,
            int(duration_s * 1000),
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
            *markers,
        ],
        args,
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
